"""An example service: register a server, notify in the background.

`POST /abcd` takes server details; a `ServerDetails` helper decides the status code and
schedules the notification by creating `BackgroundTasks()` itself (nothing passed down, nothing
returned). `GET /{msg}` shows every way FastAPI's docs and answers add a background task; with
`Afterwork(app)` installed, each of them is stored before the response is sent and survives a
crash.

Run it:   ./scripts/serve          (or: uvicorn examples.server_details:app)
Try it:   curl -XPOST localhost:8000/abcd -H 'content-type: application/json' \\
               -d '{"hostname": "db1", "ip": "10.0.0.7", "cpus": 8, "memory_gb": 32}'
          curl localhost:8000/afterwork/api/tasks/<notification_task from the answer>

Open http://127.0.0.1:8000/ for a page that submits the form, shows "notification pending"
while the task runs (Server-Sent Events from the status API) and moves on once it is sent.
Open http://127.0.0.1:8000/report for a slow report built in steps: a live progress bar, then
the page of its result (examples/reports.py).

Environment: AFTERWORK_DASHBOARD_TOKEN (turns the dashboard on at /afterwork/),
NOTIFY_MAX_ATTEMPTS (default 3), NOTIFICATIONS_FILE (default ./notifications.jsonl),
NOTIFY_WEBHOOK_URL (POST each notification there too), NOTIFY_DELAY_SECONDS (a slow notifier,
for demos and tests), AFTERWORK_URL (default sqlite:///./afterwork.db).
"""

from __future__ import annotations

import json
import os
import time
from html import escape
from ipaddress import IPv4Address, IPv6Address

import fastapi
import httpx
from fastapi import FastAPI, HTTPException, Response
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, Field

import afterwork
from afterwork import Afterwork, BackgroundTask, BackgroundTasks

from .reports import report_router

app = FastAPI(title="server details")
# The dashboard (/afterwork/) is on when a token is set: AFTERWORK_DASHBOARD_TOKEN=... ./scripts/serve
aw = Afterwork(app, dashboard=bool(os.environ.get("AFTERWORK_DASHBOARD_TOKEN")),
               max_attempts=int(os.environ.get("NOTIFY_MAX_ATTEMPTS", "3")))
app.include_router(report_router(aw))  # before GET /{msg}, which takes any single segment

WEBHOOK_TIMEOUT_SECONDS = 5.0


class serverModel(BaseModel):  # names kept from the service this example reworks
    hostname: str = Field(min_length=1, max_length=253)
    ip: IPv4Address | IPv6Address
    cpus: int = Field(gt=0)
    memory_gb: float = Field(gt=0)
    os: str = "linux"


class abcdResponseModel(BaseModel):
    hostname: str
    status: str
    notification_task: str


def notification_func(subject: str, message: str) -> None:
    """Append the notification to a JSON-lines file and, if configured, POST it to a webhook.
    Each is a step: a webhook error raises, afterwork records it on the task and retries, and
    the retry POSTs the note again without writing the line twice (the recorded step returns
    the note it wrote)."""
    time.sleep(float(os.environ.get("NOTIFY_DELAY_SECONDS", "0")))
    note = afterwork.step_sync("write the line", write_notification, subject, message)
    webhook = os.environ.get("NOTIFY_WEBHOOK_URL")
    if webhook:
        afterwork.step_sync("post to the webhook", post_webhook, webhook, note)


def write_notification(subject: str, message: str) -> dict[str, object]:
    note = {"subject": subject, "message": message, "pid": os.getpid(), "at": time.time()}
    with open(os.environ.get("NOTIFICATIONS_FILE", "notifications.jsonl"), "a") as f:
        f.write(json.dumps(note) + "\n")
    return note


def post_webhook(url: str, note: dict[str, object]) -> None:
    httpx.post(url, json=note, timeout=WEBHOOK_TIMEOUT_SECONDS).raise_for_status()


KNOWN_SERVERS: dict[str, serverModel] = {}


class ServerDetails:
    """The helper of the question: it validates, picks the status code and notifies."""

    MAX_CPUS = 4096

    def __init__(self, server: serverModel) -> None:
        self.server = server

    def register(self) -> tuple[int, abcdResponseModel]:
        if self.server.cpus > self.MAX_CPUS:
            raise HTTPException(422, f"{self.server.cpus} CPUs? At most {self.MAX_CPUS}.")
        known = self.server.hostname in KNOWN_SERVERS
        KNOWN_SERVERS[self.server.hostname] = self.server
        status = "updated" if known else "registered"
        tasks = BackgroundTasks()  # binds to the current request: nothing to pass down
        handle = tasks.add_task(notification_func, self.server.hostname,
                                message=f"server {self.server.hostname} {status}")
        body = abcdResponseModel(hostname=self.server.hostname, status=status,
                                 notification_task=handle.id)
        return (200 if known else 201), body


@app.post("/abcd", operation_id="getServerDetails", response_model=abcdResponseModel,
          status_code=201)
def get_server_details(server: serverModel, response: Response) -> abcdResponseModel:
    status_code, body = ServerDetails(server).register()
    response.status_code = status_code
    return body


# A page that waits for its notification without polling in a loop.

PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>Register a server</title></head>
<body><h1>Register a server</h1>
<form id="f">hostname <input name="hostname" value="db1"> ip <input name="ip" value="10.0.0.7">
cpus <input name="cpus" value="8"> memory (GB) <input name="memory_gb" value="32">
<button id="send">register</button></form><p id="status"></p>
<script>
document.getElementById("f").onsubmit = async (e) => {
  e.preventDefault();
  const body = Object.fromEntries(new FormData(e.target));
  const r = await fetch("/abcd", {method: "POST", headers: {"content-type": "application/json"},
                                  body: JSON.stringify(body)});
  const answer = await r.json();
  const status = document.getElementById("status");
  if (!r.ok) { status.textContent = JSON.stringify(answer.detail); return; }
  status.textContent = "notification pending";
  const events = new EventSource(`/afterwork/api/tasks/${answer.notification_task}/events`);
  events.addEventListener("state", (m) => {
    const task = JSON.parse(m.data);
    status.textContent = `notification ${task.state}`;
    if (task.state === "succeeded") { events.close(); location.href = `/page/sent?task=${task.id}`; }
    if (task.state === "failed" || task.state === "cancelled") events.close();
  });
};
</script></body></html>"""


@app.get("/", response_class=HTMLResponse, include_in_schema=False)
def register_page() -> str:
    return PAGE


@app.get("/favicon.ico", include_in_schema=False)
def favicon() -> Response:  # or browsers' icon requests would land on GET /{msg}
    return Response(status_code=204)


@app.get("/page/sent", response_class=HTMLResponse, include_in_schema=False)
def sent_page(task: str) -> str:
    return f"<!doctype html><p id='done'>Notification sent (task {escape(task)}).</p>"


# GET /{msg}, in each of the ways FastAPI allows.

def notify_later(tasks: BackgroundTasks, msg: str, how: str) -> str:
    return tasks.add_task(notification_func, msg, message=f"{how}: {msg}").id


@app.get("/param/{msg}")
def via_parameter(msg: str, tasks: BackgroundTasks) -> dict[str, str]:
    """The endpoint parameter, passed into a helper."""
    return {"msg": msg, "notification_task": notify_later(tasks, msg, "param")}


def tasks_for(msg: str) -> tuple[BackgroundTasks, str]:
    tasks = BackgroundTasks()
    return tasks, notify_later(tasks, msg, "json")


@app.get("/json/{msg}")
def via_json_response(msg: str) -> JSONResponse:
    """A helper returns the tasks; they ride on JSONResponse(background=...)."""
    tasks, task_id = tasks_for(msg)
    return JSONResponse({"msg": msg, "notification_task": task_id}, background=tasks)


@app.get("/attr/{msg}")
def via_response_attribute(msg: str) -> JSONResponse:
    """response.background = tasks, after building the response."""
    tasks = BackgroundTasks()
    task_id = notify_later(tasks, msg, "attr")
    response = JSONResponse({"msg": msg, "notification_task": task_id})
    response.background = tasks
    return response


@app.get("/single/{msg}")
def via_single_task(msg: str) -> JSONResponse:
    """A single BackgroundTask as the response's background."""
    task = BackgroundTask(notification_func, msg, message=f"single: {msg}")
    response = JSONResponse({"msg": msg, "notification_task": task.handle.id})
    response.background = task
    return response


@app.get("/{msg}")
def via_fastapi_own_class(msg: str, tasks: fastapi.BackgroundTasks) -> dict[str, str]:
    """FastAPI's own class: durable too, once Afterwork(app) is installed."""
    handle = tasks.add_task(notification_func, msg, message=f"fastapi: {msg}")
    return {"msg": msg, "notification_task": handle.id}  # type: ignore[attr-defined]
