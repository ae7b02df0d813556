"""The JSON API under `api_prefix` (default /afterwork/api).

Public, because a task id is an unguessable UUID a page may hold: `GET /tasks/{id}` (with
`?wait=N` to long-poll until the task is final) and `GET /tasks/{id}/events` (Server-Sent
Events: `state` when its state changes, `progress` when only its progress does). They show
what a waiting page needs and nothing else (PUBLIC_FIELDS, and its progress), and what the
task returned only when its author allowed it (`@task(public_result=True)`).
With `Afterwork(dashboard=True, ...)`, behind the operator's auth: the same endpoints show
everything (arguments, traceback, history; secrets masked), and `GET /tasks` (filters, cursor
pages), `GET /counts`, `GET /throughput`, `POST /tasks/{id}/retry` and `POST /tasks/{id}/cancel`;
an operator's `GET /tasks/{id}` lists the task's steps too (timings and outcome), as `afterwork
show --json` does.

Every answer under the prefixes is JSON (or the dashboard's HTML): a client's mistake is a
4xx with a short `detail`, a store fault a 503 that names neither the store nor credentials.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from .._aio import wait_event
from .._errors import AfterworkError, StoreError, TaskNotFoundError, TaskStateError, public_detail
from .._models import FINAL_STATES, TIMESTAMPS, TaskRecord, TaskState, iso, result_fields
from ._auth import cross_site, deny, is_operator
from ._watch import Reads, Watch, fingerprint

if TYPE_CHECKING:
    from ._console import Console, TaskReads

log = logging.getLogger("afterwork")

LIST_LIMIT_MAX = 1000
MINUTES_MAX = 24 * 60
WAIT_SECONDS_MAX = 30.0
STREAM_SECONDS_MAX = 300.0  # an SSE stream ends by then; EventSource reconnects by itself
KEEPALIVE_SECONDS = 15.0  # an SSE comment this often: proxies keep the stream, gone clients show
TASK_ID_CHARS_MAX = 200
# What a waiting page needs. Not the name: it is the code's module and function, which says
# how the application is built and which a page can show in its own words.
# Its progress: what the task's author reports for the page to show (done, total, a note).
PUBLIC_FIELDS = ("id", "state", "attempts", "max_attempts", *TIMESTAMPS, "progress")


def public_json(record: TaskRecord) -> dict[str, Any]:
    """What anyone holding the task's id may see: PUBLIC_FIELDS of the task's JSON, its
    progress, and its result if the task's author made it public (never its error)."""
    full = record.to_json()
    shown = {key: full[key] for key in PUBLIC_FIELDS}
    if (record.stored_result() or {}).get("public") is True:
        shown.update(result_fields(record))
    return shown


def states_from(raw: str | None) -> list[TaskState]:
    if not raw:
        return []
    wanted = raw.split(",")
    unknown = set(wanted) - {s.public for s in TaskState}
    if unknown:
        raise ValueError(f"unknown state(s) {', '.join(sorted(unknown))[:200]}: use "
                         "queued, running, succeeded, failed, cancelled")
    return [s for s in TaskState if s.public in wanted]


def number(raw: str | None, label: str, default: float) -> float:
    """A finite number from a query parameter; ValueError says which parameter is wrong."""
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{label}={raw[:40]!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"{label}={raw[:40]!r} is not a finite number")
    return value


def clamp(value: float, low: float, high: float) -> float:
    return max(low, min(high, value))


def _time(raw: str | None, label: str) -> float | None:
    if raw is None:
        return None
    try:
        return number(raw, label, 0.0)
    except ValueError:
        pass
    import datetime as dt

    try:
        return dt.datetime.fromisoformat(raw).timestamp()
    except (ValueError, OverflowError, OSError):
        raise ValueError(f"{label}={raw[:40]!r}: give Unix seconds or an ISO 8601 time") from None


def _bad_id(task_id: str) -> bool:
    """Ids are UUIDs; anything long or with control characters is no id (and never reaches
    the store, whose driver may refuse such text)."""
    return len(task_id) > TASK_ID_CHARS_MAX or not task_id.isprintable()


def _no_task(task_id: str) -> JSONResponse:
    return JSONResponse({"detail": f"no task {task_id[:TASK_ID_CHARS_MAX]!r}"}, status_code=404)


def store_fault(exc: AfterworkError) -> JSONResponse:
    """A 503 for a store fault: the log gets the reason (passwords masked), the client only
    what happened."""
    log.warning("afterwork: API read failed, answering 503: %s", exc)
    return JSONResponse({"detail": f"{public_detail(exc)}; retry later"}, status_code=503,
                        headers={"Retry-After": "5"})


class StreamSlots:
    """At most `limit` Server-Sent Event streams at once in this process."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open = 0

    def take(self) -> bool:
        if self.open >= self.limit:
            return False
        self.open += 1
        return True

    def give_back(self) -> None:
        self.open -= 1


class SlotStream(StreamingResponse):
    """A stream that gives its slot back however it ends (even if it never started)."""

    def __init__(self, content: AsyncIterator[str], release: Callable[[], None]) -> None:
        super().__init__(content, media_type="text/event-stream",
                         headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        self._release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._release()


def build_api(console: Console, reads: Reads, watch: Watch, slots: StreamSlots) -> list[BaseRoute]:
    settings = console.settings
    read = reads.run

    async def operator(request: Request) -> bool:
        return bool(settings.dashboard) and await is_operator(settings, request)

    async def shown(record: TaskRecord, full: bool) -> dict[str, Any]:
        # The operator's view masks secrets, which may look the function up: off the loop.
        return await read(console.redactor.task_view, record) if full else public_json(record)

    async def one(request: Request) -> Response:
        task_id = request.path_params["task_id"]
        if _bad_id(task_id):
            return _no_task(task_id)
        try:
            wait = clamp(number(request.query_params.get("wait"), "wait", 0.0), 0.0, WAIT_SECONDS_MAX)
        except ValueError as exc:
            return JSONResponse({"detail": str(exc)}, status_code=400)
        try:
            record = await read(console.tasks.get, task_id)
            if record is not None and record.state not in FINAL_STATES and wait > 0:
                record = await _until_final(record.id, record, time.monotonic() + wait)
            if record is None:
                return _no_task(task_id)
            if not await operator(request):
                return JSONResponse(public_json(record))
            data = await shown(record, True)
            data["steps"] = await read(steps_json, console.tasks, record.id)
            return JSONResponse(data)
        except AfterworkError as exc:
            return store_fault(exc)

    async def _until_final(task_id: str, record: TaskRecord | None, deadline: float
                           ) -> TaskRecord | None:
        with watch.follow(task_id) as changed:
            while (record is not None and record.state not in FINAL_STATES
                   and (left := deadline - time.monotonic()) > 0):
                if not await wait_event(changed, left):
                    break
                changed.clear()
                record = watch.latest.get(task_id, record)
        return record

    async def events(request: Request) -> Response:
        task_id = request.path_params["task_id"]
        if _bad_id(task_id):
            return _no_task(task_id)
        full = await operator(request)
        try:
            first = await read(console.tasks.get, task_id)
            first_shown = await shown(first, full) if first is not None else None
        except AfterworkError as exc:
            return store_fault(exc)
        if first is None:
            return _no_task(task_id)
        if not slots.take():
            return JSONResponse({"detail": f"too many event streams open ({slots.limit}); "
                                           "retry later or poll ?wait="},
                                status_code=429, headers={"Retry-After": "5"})

        async def stream() -> AsyncIterator[str]:
            record: TaskRecord | None = first
            task_id = first.id  # the task itself, if the path named an alias of it
            yield f"event: state\ndata: {json.dumps(first_shown)}\n\n"
            last, last_progress = fingerprint(replace(first, progress=None)), first.progress
            deadline = time.monotonic() + STREAM_SECONDS_MAX
            with watch.follow(task_id) as changed:
                while record is not None and record.state not in FINAL_STATES:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return
                    if not await wait_event(changed, min(left, KEEPALIVE_SECONDS)):
                        yield ": keep-alive\n\n"
                        continue
                    changed.clear()
                    record = watch.latest.get(task_id, record)
                    if record is None:
                        return
                    if (mark := fingerprint(replace(record, progress=None))) != last:
                        last, last_progress = mark, record.progress
                        try:
                            data = await shown(record, full)
                        except AfterworkError:
                            continue  # the API's threads are busy: the next change tells again
                        yield f"event: state\ndata: {json.dumps(data)}\n\n"
                    elif record.progress != last_progress:
                        last_progress = record.progress
                        yield f"event: progress\ndata: {json.dumps(record.progress_json())}\n\n"

        return SlotStream(stream(), slots.give_back)

    async def many(request: Request) -> Response:
        if (refused := await deny(settings, request)) is not None:
            return refused
        q = request.query_params
        try:
            limit = int(clamp(number(q.get("limit"), "limit", 100), 1, LIST_LIMIT_MAX))
            cursor = None
            if "cursor" in q:
                at, _, last_id = q["cursor"].partition("/")
                cursor = (number(at, "cursor", 0.0), last_id)
            states = states_from(q.get("state"))
            since, until = _time(q.get("since"), "since"), _time(q.get("until"), "until")
            if not (q.get("name") or "").isprintable():  # a NUL byte: PostgreSQL refuses it
                raise ValueError("name= holds control characters: give a task's name")
        except ValueError as exc:
            return JSONResponse({"detail": str(exc)}, status_code=400)
        def load() -> tuple[list[dict[str, Any]], TaskRecord | None]:
            records = console.tasks.query(  # one more: is there a next page?
                states=states, name=q.get("name"), limit=limit + 1, since=since, until=until,
                before=cursor)
            last = records[limit - 1] if len(records) > limit else None
            # masking secrets may look functions up: off the loop too
            return [console.redactor.list_view(r) for r in records[:limit]], last

        try:
            page, last = await read(load)
        except AfterworkError as exc:
            return store_fault(exc)
        return JSONResponse({"tasks": page, "next": f"{last.created_at!r}/{last.id}" if last else None})

    async def counts(request: Request) -> Response:
        if (refused := await deny(settings, request)) is not None:
            return refused
        try:
            found = await read(console.tasks.counts)
        except AfterworkError as exc:
            return store_fault(exc)
        by_state: dict[str, int] = {}
        by_name: dict[str, dict[str, int]] = {}
        for (state, name), n in found.items():
            by_state[state] = by_state.get(state, 0) + n
            by_name.setdefault(name, {})[state] = by_name.get(name, {}).get(state, 0) + n
        return JSONResponse({"by_state": by_state, "by_name": by_name})

    async def throughput(request: Request) -> Response:
        if (refused := await deny(settings, request)) is not None:
            return refused
        try:
            minutes = int(clamp(number(request.query_params.get("minutes"), "minutes", 60),
                                1, MINUTES_MAX))
        except ValueError as exc:
            return JSONResponse({"detail": str(exc)}, status_code=400)
        try:
            return JSONResponse({"minutes": await read(per_minute, console.tasks, minutes)})
        except AfterworkError as exc:
            return store_fault(exc)

    async def act(request: Request) -> Response:
        if request.path_params["action"] not in ("retry", "cancel"):
            return JSONResponse({"detail": "POST .../retry or .../cancel"}, status_code=404)
        if (refused := await deny(settings, request)) is not None or (refused := cross_site(request)):
            return refused
        task_id = request.path_params["task_id"]
        if _bad_id(task_id):
            return _no_task(task_id)
        try:
            after = await read(console.action(request.path_params["action"]), task_id)
        except TaskNotFoundError as exc:
            return JSONResponse({"detail": str(exc)}, status_code=404)
        except TaskStateError as exc:
            return JSONResponse({"detail": str(exc)}, status_code=409)
        except StoreError as exc:
            return store_fault(exc)
        return JSONResponse(console.redactor.task_view(after))

    prefix = settings.api_prefix.rstrip("/")
    return [
        Route(f"{prefix}/tasks/{{task_id}}", one, methods=["GET"]),
        Route(f"{prefix}/tasks/{{task_id}}/events", events, methods=["GET"]),
        Route(f"{prefix}/tasks", many, methods=["GET"]),
        Route(f"{prefix}/counts", counts, methods=["GET"]),
        Route(f"{prefix}/throughput", throughput, methods=["GET"]),
        Route(f"{prefix}/tasks/{{task_id}}/{{action:str}}", act, methods=["POST"]),
    ]


def steps_json(tasks: TaskReads, task_id: str) -> list[dict[str, Any]]:
    """The task's steps as operators see them (`StepRecord.to_json`: no results), in order."""
    return [s.to_json() for s in tasks.steps_of(task_id)]


def per_minute(tasks: TaskReads, minutes: int) -> list[dict[str, Any]]:
    """Succeeded and failed per minute over the last `minutes`, oldest first, gaps as zero."""
    now_minute = int(time.time() // 60) * 60
    start = now_minute - (minutes - 1) * 60
    rows = {(m, st): n for m, st, n in tasks.finished_per_minute(start)}
    return [{"minute": iso(m), "succeeded": rows.get((m, "succeeded"), 0),
             "failed": rows.get((m, "failed"), 0)} for m in range(start, now_minute + 1, 60)]

