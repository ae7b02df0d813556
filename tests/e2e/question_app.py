"""The question's service as its answer writes it, with FastAPI's and Starlette's own classes
only, and one line added: `Afterwork(app)`. Each way of adding the notification is here.

NOTES_FILE: where each notification writes a "start" and a "done" line (JSON);
NOTIFY_SECONDS: how long a notification takes (so a test can kill the server mid-way).
"""

from __future__ import annotations

import json
import os
import time

from fastapi import BackgroundTasks, FastAPI
from fastapi.responses import JSONResponse
from starlette.background import BackgroundTask

from afterwork import Afterwork

app = FastAPI()
Afterwork(app)  # AFTERWORK_URL: the SQLite file


def write_notification(way: str, message: str = "") -> None:
    path = os.environ["NOTES_FILE"]
    with open(path, "a") as f:
        f.write(json.dumps({"way": way, "event": "start", "pid": os.getpid()}) + "\n")
    time.sleep(float(os.environ.get("NOTIFY_SECONDS", "0")))
    with open(path, "a") as f:
        f.write(json.dumps({"way": way, "event": "done", "pid": os.getpid()}) + "\n")


def notify_from_helper(tasks: BackgroundTasks, way: str) -> None:
    tasks.add_task(write_notification, way, message=f"via {way}")


@app.post("/param")
def via_parameter(tasks: BackgroundTasks) -> dict[str, str]:
    notify_from_helper(tasks, "param")
    return {"way": "param"}


@app.post("/json")
def via_json_response() -> JSONResponse:
    tasks = BackgroundTasks()
    notify_from_helper(tasks, "json")
    return JSONResponse({"way": "json"}, background=tasks)


@app.post("/attr")
def via_response_attribute() -> JSONResponse:
    response = JSONResponse({"way": "attr"})
    tasks = BackgroundTasks()
    notify_from_helper(tasks, "attr")
    response.background = tasks
    return response


@app.post("/single")
def via_single_task() -> JSONResponse:
    return JSONResponse({"way": "single"},
                        background=BackgroundTask(write_notification, "single", message="one"))
