"""The JSON API under `api_prefix` (default /afterwork/api).

Public, because a task id is an unguessable UUID a page may hold: `GET /tasks/{id}` (with
`?wait=N` to long-poll until the task is final) and `GET /tasks/{id}/events` (Server-Sent
Events of its state). With `Afterwork(dashboard=True, ...)`, behind the operator's auth:
`GET /tasks` (filters, cursor pages), `GET /counts`, `GET /throughput`,
`POST /tasks/{id}/retry` and `POST /tasks/{id}/cancel`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route, Router

from ._errors import AfterworkError, TaskNotFoundError, TaskStateError
from ._models import FINAL_STATES, TaskRecord, TaskState, iso
from .dashboard._auth import cross_site, deny
from .dashboard._redact import arguments

if TYPE_CHECKING:
    from ._app import Afterwork

LIST_LIMIT_MAX = 1000
WAIT_SECONDS_MAX = 30.0
WATCH_EVERY_SECONDS = 0.25
STREAM_SECONDS_MAX = 300.0  # an SSE stream ends by then; EventSource reconnects by itself


def task_json(record: TaskRecord) -> dict[str, Any]:
    return record.to_json()  # times in ISO 8601 UTC, history's too: as the CLI prints them


def states_from(raw: str | None) -> list[TaskState]:
    if not raw:
        return []
    wanted = raw.split(",")
    unknown = set(wanted) - {s.public for s in TaskState}
    if unknown:
        raise ValueError(f"unknown state(s) {', '.join(sorted(unknown))}: use "
                         "queued, running, succeeded, failed, cancelled")
    return [s for s in TaskState if s.public in wanted]


def _time(raw: str | None) -> float | None:
    if raw is None:
        return None
    try:
        return float(raw)
    except ValueError:
        return dt.datetime.fromisoformat(raw).timestamp()  # ValueError says what is wrong


def build_api(aw: Afterwork) -> list[BaseRoute]:
    async def read(fn: Any, *args: Any) -> Any:
        return await anyio.to_thread.run_sync(fn, *args)

    async def one(request: Request) -> Response:
        task_id = request.path_params["task_id"]
        try:
            wait = min(float(request.query_params.get("wait", "0")), WAIT_SECONDS_MAX)
            record = await read(aw.store.get, task_id)
            deadline = time.monotonic() + wait
            while record is not None and record.state not in FINAL_STATES and time.monotonic() < deadline:
                await asyncio.sleep(WATCH_EVERY_SECONDS)
                record = await read(aw.store.get, task_id)
        except ValueError as exc:
            return JSONResponse({"detail": f"wait: {exc}"}, status_code=400)
        except AfterworkError as exc:
            return JSONResponse({"detail": str(exc)}, status_code=503)
        if record is None:
            return JSONResponse({"detail": f"no task {task_id}"}, status_code=404)
        data = task_json(record)
        if aw.dashboard and await deny(aw, request) is None:  # operators see the arguments
            data["arguments"] = arguments(record.name, record.payload)
        return JSONResponse(data)

    async def events(request: Request) -> Response:
        task_id = request.path_params["task_id"]
        if await read(aw.store.get, task_id) is None:
            return JSONResponse({"detail": f"no task {task_id}"}, status_code=404)

        async def stream() -> AsyncIterator[str]:
            last = None
            deadline = time.monotonic() + STREAM_SECONDS_MAX
            while time.monotonic() < deadline:
                record = await read(aw.store.get, task_id)
                if record is None:
                    return
                data = json.dumps(task_json(record))
                if data != last:
                    last = data
                    yield f"event: state\ndata: {data}\n\n"
                if record.state in FINAL_STATES:
                    return
                await asyncio.sleep(WATCH_EVERY_SECONDS)

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    async def many(request: Request) -> Response:
        if (refused := await deny(aw, request)) is not None:
            return refused
        q = request.query_params
        try:
            limit = min(int(q.get("limit", "100")), LIST_LIMIT_MAX)
            cursor = None
            if "cursor" in q:
                at, _, last_id = q["cursor"].partition("/")
                cursor = (float(at), last_id)
            records = await read(lambda: aw.store.query(  # one more: is there a next page?
                states=states_from(q.get("state")), name=q.get("name"), limit=limit + 1,
                since=_time(q.get("since")), until=_time(q.get("until")), before=cursor))
        except ValueError as exc:
            return JSONResponse({"detail": str(exc)}, status_code=400)
        page = [task_json(r) for r in records[:limit]]
        last = records[limit - 1] if len(records) > limit else None
        return JSONResponse({"tasks": page, "next": f"{last.created_at!r}/{last.id}" if last else None})

    async def counts(request: Request) -> Response:
        if (refused := await deny(aw, request)) is not None:
            return refused
        found = await read(aw.store.counts)
        by_state: dict[str, int] = {}
        by_name: dict[str, dict[str, int]] = {}
        for (state, name), n in found.items():
            by_state[state] = by_state.get(state, 0) + n
            by_name.setdefault(name, {})[state] = by_name.get(name, {}).get(state, 0) + n
        return JSONResponse({"by_state": by_state, "by_name": by_name})

    async def throughput(request: Request) -> Response:
        if (refused := await deny(aw, request)) is not None:
            return refused
        minutes = min(int(request.query_params.get("minutes", "60")), 24 * 60)
        return JSONResponse({"minutes": await read(per_minute, aw, minutes)})

    async def act(request: Request) -> Response:
        if request.path_params["action"] not in ("retry", "cancel"):
            return JSONResponse({"detail": "POST .../retry or .../cancel"}, status_code=404)
        if (refused := await deny(aw, request)) is not None or (refused := cross_site(request)):
            return refused
        try:
            after = await read(getattr(aw, request.path_params["action"]),
                               request.path_params["task_id"])
        except TaskNotFoundError as exc:
            return JSONResponse({"detail": str(exc)}, status_code=404)
        except TaskStateError as exc:
            return JSONResponse({"detail": str(exc)}, status_code=409)
        return JSONResponse(task_json(after))

    prefix = aw.api_prefix.rstrip("/")
    return [
        Route(f"{prefix}/tasks/{{task_id}}", one, methods=["GET"]),
        Route(f"{prefix}/tasks/{{task_id}}/events", events, methods=["GET"]),
        Route(f"{prefix}/tasks", many, methods=["GET"]),
        Route(f"{prefix}/counts", counts, methods=["GET"]),
        Route(f"{prefix}/throughput", throughput, methods=["GET"]),
        Route(f"{prefix}/tasks/{{task_id}}/{{action:str}}", act, methods=["POST"]),
    ]


def per_minute(aw: Afterwork, minutes: int) -> list[dict[str, Any]]:
    """Succeeded and failed per minute over the last `minutes`, oldest first, gaps as zero."""
    now_minute = int(time.time() // 60) * 60
    start = now_minute - (minutes - 1) * 60
    rows = {(m, st): n for m, st, n in aw.store.finished_per_minute(start)}
    return [{"minute": iso(m), "succeeded": rows.get((m, "succeeded"), 0),
             "failed": rows.get((m, "failed"), 0)} for m in range(start, now_minute + 1, 60)]


def build_app(aw: Afterwork) -> Router:
    routes = build_api(aw)
    if aw.dashboard:
        from .dashboard._page import build_pages

        routes += build_pages(aw)
    if aw.metrics:
        from .dashboard._metrics import build_metrics

        routes += build_metrics(aw)
    return Router(routes=routes)
