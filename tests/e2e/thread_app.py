"""A tiny service for the e2e tests: where tasks run, in what order, and failing endpoints."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time

from fastapi import FastAPI, HTTPException

from afterwork import Afterwork, BackgroundTasks

app = FastAPI()
Afterwork(app)
LOG = os.environ.get("E2E_LOG", "e2e.jsonl")
LOOP_THREAD: list[int] = []


def _log(**fields: object) -> None:
    with open(LOG, "a") as f:
        f.write(json.dumps({**fields, "pid": os.getpid(), "at": time.time()}) + "\n")


async def async_task(label: str, seconds: float = 0.0) -> None:
    await asyncio.sleep(seconds)
    _log(label=label, thread=threading.get_ident(), loop_thread=LOOP_THREAD[0])


def sync_task(label: str, seconds: float = 0.0) -> None:
    time.sleep(seconds)
    _log(label=label, thread=threading.get_ident(), loop_thread=LOOP_THREAD[0])


@app.get("/threads")
async def threads(tasks: BackgroundTasks) -> dict[str, int]:
    LOOP_THREAD[:] = [threading.get_ident()]  # an async endpoint runs on the loop thread
    tasks.add_task(async_task, "async")
    tasks.add_task(sync_task, "sync")
    return {"loop_thread": LOOP_THREAD[0]}


@app.get("/order")
async def order(tasks: BackgroundTasks) -> dict[str, bool]:
    LOOP_THREAD[:] = [threading.get_ident()]
    tasks.add_task(async_task, "first", 0.5)  # the slowest still runs first
    tasks.add_task(sync_task, "second")
    tasks.add_task(async_task, "third")
    return {"ok": True}


@app.get("/slow")
async def slow(tasks: BackgroundTasks) -> dict[str, str]:
    LOOP_THREAD[:] = [threading.get_ident()]
    return {"id": tasks.add_task(async_task, "slow", 1.0).id}


@app.get("/http-error")
async def http_error(tasks: BackgroundTasks) -> None:
    tasks.add_task(async_task, "after-http-error")
    raise HTTPException(409, "no")


@app.get("/crash")
async def crash(tasks: BackgroundTasks) -> None:
    tasks.add_task(async_task, "after-crash")
    raise RuntimeError("endpoint crashed")
