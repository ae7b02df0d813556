"""The status API: `GET {prefix}/tasks/{id}` and `GET {prefix}/tasks`, as JSON."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, Router

from ._errors import AfterworkError
from ._models import TaskRecord, TaskState

if TYPE_CHECKING:
    from ._app import Afterwork

LIST_LIMIT_MAX = 1000


def _iso(epoch: Any) -> str | None:
    if epoch is None:
        return None
    return dt.datetime.fromtimestamp(float(epoch), dt.timezone.utc).isoformat()


def task_json(record: TaskRecord) -> dict[str, Any]:
    data = record.to_json()
    for key in ("created_at", "run_at", "started_at", "finished_at"):
        data[key] = _iso(data[key])
    return data


def _states(raw: str | None) -> list[TaskState]:
    if not raw:
        return []
    wanted = raw.split(",")
    states = [s for s in TaskState if s.public in wanted]
    unknown = set(wanted) - {s.public for s in TaskState}
    if unknown:
        raise ValueError(f"unknown state(s) {', '.join(sorted(unknown))}: use "
                         "queued, running, succeeded, failed, cancelled")
    return states


def build_api(aw: Afterwork) -> Router:
    async def one(request: Request) -> JSONResponse:
        task_id = request.path_params["task_id"]
        try:
            record = await anyio.to_thread.run_sync(aw.store.get, task_id)
        except AfterworkError as exc:
            return JSONResponse({"detail": str(exc)}, status_code=503)
        if record is None:
            return JSONResponse({"detail": f"no task {task_id}"}, status_code=404)
        return JSONResponse(task_json(record))

    async def many(request: Request) -> JSONResponse:
        try:
            states = _states(request.query_params.get("state"))
            limit = min(int(request.query_params.get("limit", "100")), LIST_LIMIT_MAX)
        except ValueError as exc:
            return JSONResponse({"detail": str(exc)}, status_code=400)
        name = request.query_params.get("name")

        def query() -> list[TaskRecord]:
            return aw.store.query(states=states, name=name, limit=limit)

        try:
            records = await anyio.to_thread.run_sync(query)
        except AfterworkError as exc:
            return JSONResponse({"detail": str(exc)}, status_code=503)
        return JSONResponse({"tasks": [task_json(r) for r in records]})

    prefix = aw.api_prefix.rstrip("/")
    return Router(routes=[
        Route(f"{prefix}/tasks/{{task_id}}", one, methods=["GET"]),
        Route(f"{prefix}/tasks", many, methods=["GET"]),
    ])
