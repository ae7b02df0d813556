"""The app of `benchmarks/sse_streams.py`: a plain endpoint to time, and an endpoint that
queues a task for ten minutes (so that a stream following it stays open). The harness sets
``AFTERWORK_URL`` to a SQLite file in a fresh temporary directory."""

from __future__ import annotations

import inspect

from fastapi import FastAPI

from afterwork import Afterwork, BackgroundTasks, task

app = FastAPI()
# Above the benchmark's streams; versions without the option (to compare) have no cap.
cap = {"max_streams": 2000} if "max_streams" in inspect.signature(Afterwork).parameters else {}
Afterwork(app, **cap)  # type: ignore[arg-type]


async def later(seconds: float) -> None:
    pass


@app.get("/plain")
async def plain() -> dict[str, bool]:
    return {"ok": True}


@app.post("/later")
async def queue_later(tasks: BackgroundTasks) -> dict[str, str]:
    return {"id": tasks.add_task(task(later).options(delay=600), 0.0).id}
