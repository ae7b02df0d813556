"""The operator API's views and bulk actions (behind the dashboard's auth, like `GET /tasks`):

- `GET /queues`: each queue's depth, oldest wait, running against its limit, last hour's
  throughput and failure rate, and whether it is paused;
- `POST /queues/{queue}/pause` and `/resume`: every runner (every process) stops or starts
  taking the queue's tasks at its next claim;
- `GET /runners`: each runner process, what it serves and holds, dead ones flagged;
- `GET /names?window=1h` (15m, 1h, 24h, 7d): per task name, count, failure rate, run time
  and wait (due to started) p50/p95;
- `GET /schedules` and `POST /schedules/{name}/run`: periodic schedules, and one run now;
- `POST /tasks/bulk`: retry, cancel or delete many tasks in one action, named by `ids` or by a
  `match` (the filters of `GET /tasks`); `"preview": true` only counts them. Delete takes
  queued and finished tasks; running ones, and ones another task waits on, are refused.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from .._errors import AfterworkError, StoreError, TaskNotFoundError
from .._models import TaskState
from ._api import TASK_ID_CHARS_MAX, store_fault
from ._auth import cross_site, deny
from ._board import WINDOWS, check_queue, names_view, queues_view, runners_view
from ._find import Filter
from ._watch import Reads

if TYPE_CHECKING:
    from ._console import Console

BULK_ACTIONS = ("retry", "cancel", "delete")
BULK_MOST = 1000  # tasks one bulk action reaches; "all that match" beyond it: act again


def _bad_request(detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=400)


def _bulk_ids(console: Console, body: dict[str, Any]) -> list[str]:
    """The ids a bulk request names (blocks: call it on the API's threads); ValueError
    says what is wrong with the request."""
    if "ids" in body:
        ids = body["ids"]
        if not isinstance(ids, list) or not all(
                isinstance(i, str) and 0 < len(i) <= TASK_ID_CHARS_MAX and i.isprintable() for i in ids):
            raise ValueError("ids: give a list of task ids")
        return list(dict.fromkeys(ids))[:BULK_MOST]
    match = body.get("match")
    if not isinstance(match, dict):
        raise ValueError("give the tasks as ids: [...] or as match: {state, name, queue, id, arg, "
                         "since, until}")
    return [r.id for r in Filter.of(match).load(console, BULK_MOST)]


def delete_tasks(console: Console, ids: list[str]) -> dict[str, Any]:
    """Delete the tasks (blocks); those left say why: a runner holds them, a task waits on
    them, or they are gone."""
    deleted = set(console.delete(ids))
    left = console.tasks.get_many([i for i in ids if i not in deleted])
    refused = []
    for task_id in ids:
        if task_id in deleted:
            continue
        found = left.get(task_id)
        refused.append({"id": task_id, "detail": (
            f"task {task_id} is gone" if found is None else
            f"task {task_id} is held by a runner ({found.state.value}): let it finish first"
            if found.state in (TaskState.LEASED, TaskState.RUNNING) else
            f"a task waits on task {task_id}: delete that one first")})
    return {"done": len(deleted), "refused": refused}


def build_ops_api(console: Console, reads: Reads) -> list[BaseRoute]:
    settings = console.settings

    def listing(key: str, load: Callable[[], list[dict[str, Any]]]) -> Callable[[Request], Any]:
        """A GET endpoint answering {key: load()} (read on the API's threads)."""

        async def endpoint(request: Request) -> Response:
            if (refused := await deny(settings, request)) is not None:
                return refused
            try:
                return JSONResponse({key: await reads.run(load)})
            except AfterworkError as exc:
                return store_fault(exc)

        return endpoint

    async def pause(request: Request) -> Response:
        if (refused := await deny(settings, request)) is not None or (refused := cross_site(request)):
            return refused
        action = request.path_params["action"]
        if action not in ("pause", "resume"):
            return JSONResponse({"detail": "POST .../pause or .../resume"}, status_code=404)
        try:
            queue = check_queue(request.path_params["queue"])
        except ValueError as exc:
            return _bad_request(str(exc))
        try:
            await reads.run(console.pause_queue, queue, action == "pause")
        except AfterworkError as exc:
            return store_fault(exc)
        return JSONResponse({"queue": queue, "paused": action == "pause"})

    async def names(request: Request) -> Response:
        if (refused := await deny(settings, request)) is not None:
            return refused
        window = request.query_params.get("window", "1h")
        if window not in WINDOWS:
            return _bad_request(f"window={window[:20]!r}: give one of {', '.join(WINDOWS)}")
        try:
            return JSONResponse(await reads.run(names_view, console, window))
        except AfterworkError as exc:
            return store_fault(exc)

    async def run_schedule(request: Request) -> Response:
        if (refused := await deny(settings, request)) is not None or (refused := cross_site(request)):
            return refused
        try:
            task_id = await reads.run(console.run_schedule, request.path_params["name"])
        except TaskNotFoundError as exc:
            return JSONResponse({"detail": str(exc)}, status_code=404)
        except AfterworkError as exc:
            return store_fault(exc)
        return JSONResponse({"id": task_id})

    async def bulk(request: Request) -> Response:
        if (refused := await deny(settings, request)) is not None or (refused := cross_site(request)):
            return refused
        try:
            body = json.loads(await request.body() or b"null")
        except ValueError:
            return _bad_request("send a JSON object: {action, ids or match}")
        if not isinstance(body, dict) or body.get("action") not in BULK_ACTIONS:
            return _bad_request(f"action: {', '.join(BULK_ACTIONS)}")

        def run() -> dict[str, Any]:
            ids = _bulk_ids(console, body)
            if body.get("preview"):
                return {"count": len(ids), "most": BULK_MOST}
            if body["action"] == "delete":
                return delete_tasks(console, ids)
            act = console.action(body["action"])
            done, refused = 0, []
            for task_id in ids:
                try:
                    act(task_id)
                    done += 1
                except StoreError:
                    raise
                except AfterworkError as exc:  # gone, or not in a state the action applies to
                    refused.append({"id": task_id, "detail": str(exc)})
            return {"done": done, "refused": refused}

        try:
            return JSONResponse(await reads.run(run))
        except ValueError as exc:
            return _bad_request(str(exc))
        except AfterworkError as exc:
            return store_fault(exc)

    prefix = settings.api_prefix.rstrip("/")
    return [
        Route(f"{prefix}/queues", listing("queues", lambda: queues_view(console)), methods=["GET"]),
        Route(f"{prefix}/queues/{{queue}}/{{action}}", pause, methods=["POST"]),
        Route(f"{prefix}/runners", listing("runners", lambda: runners_view(console)), methods=["GET"]),
        Route(f"{prefix}/names", names, methods=["GET"]),
        Route(f"{prefix}/schedules", listing("schedules", console.schedules), methods=["GET"]),
        Route(f"{prefix}/schedules/{{name}}/run", run_schedule, methods=["POST"]),
        Route(f"{prefix}/tasks/bulk", bulk, methods=["POST"]),
    ]
