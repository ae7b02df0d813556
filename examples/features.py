"""Beyond "after the response": every scheduling feature of afterwork in one small service.

Run it:   uvicorn examples.features:app       (tasks in ./afterwork.db)
          curl -XPOST 'localhost:8000/signup?email=a@example.com'
          curl -XPOST 'localhost:8000/orders?item=book&fail=false'
          curl -XPOST 'localhost:8000/hooks?url=http://127.0.0.1:9/'

docs/delays.md, docs/periodic.md, docs/queues.md, docs/dedup.md and docs/transactions.md
explain each part; tests/integration/test_features_example.py runs it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import time
from contextlib import closing

from fastapi import FastAPI, HTTPException

from afterwork import Afterwork, BackgroundTasks, in_transaction, periodic, task

OUTBOX = os.environ.get("FEATURES_OUTBOX", "outbox.jsonl")

app = FastAPI(title="afterwork features")
aw = Afterwork(app, queue_limits={"webhooks": 5})  # at most 5 webhook calls at once, everywhere


def _log(kind: str, **fields: object) -> None:
    with open(OUTBOX, "a") as f:
        f.write(json.dumps({"kind": kind, "at": time.time(), **fields}) + "\n")


# Delays and ETAs ----------------------------------------------------------------------------
@task
async def send_email(to: str, template: str) -> None:
    _log("email", to=to, template=template)


@app.post("/signup")
def signup(email: str, tasks: BackgroundTasks) -> dict[str, str]:
    welcome = tasks.add_task(send_email, email, template="welcome")  # right after the response
    # Ten minutes later; the key makes a second sign-up within that time reuse this task.
    nudge = tasks.add_task(send_email.options(delay=600, key=f"nudge:{email}"), email,
                           template="finish-your-profile")
    return {"welcome": welcome.id, "nudge": nudge.id}


@app.post("/reminders")
def remind(email: str, at: dt.datetime, tasks: BackgroundTasks) -> dict[str, str]:
    return {"id": tasks.add_task(send_email.options(run_at=at), email, template="reminder").id}


# Periodic tasks ------------------------------------------------------------------------------
@periodic(cron="0 3 * * *")  # every night at 03:00 UTC, once however many processes run
def nightly_report() -> None:
    _log("report")


@periodic(every=3600, missed="skip")  # hourly; ticks missed while everything was down are dropped
async def hourly_cleanup() -> None:
    _log("cleanup")


# Queues, priorities and limits ---------------------------------------------------------------
@task(queue="webhooks", rate_limit=(10, 1.0), max_attempts=5)  # 10 starts a second at most
async def call_webhook(url: str, payload: dict[str, str]) -> None:
    import httpx

    async with httpx.AsyncClient(timeout=5) as client:
        (await client.post(url, json=payload)).raise_for_status()
    _log("webhook", url=url)


@app.post("/hooks")
def hook(url: str, tasks: BackgroundTasks, urgent: bool = False) -> dict[str, str]:
    call = call_webhook.options(priority=10) if urgent else call_webhook
    return {"id": tasks.add_task(call, url, {"event": "ping"}).id}


# Enqueue inside the application's own transaction ---------------------------------------------
DB = aw.url.removeprefix("sqlite:///") if aw.url.startswith("sqlite:///") else "orders.db"


@app.post("/orders")
def order(item: str, fail: bool = False) -> dict[str, str]:
    """The order row and its receipt task commit together, or neither exists."""
    try:
        # closing(): sqlite3's own `with` only commits; this also closes the connection
        with closing(sqlite3.connect(DB)) as conn, conn:  # the store's own database: one transaction
            conn.execute("CREATE TABLE IF NOT EXISTS orders (item TEXT, at REAL)")
            conn.execute("INSERT INTO orders VALUES (?, ?)", (item, time.time()))
            receipt = in_transaction(conn).add_task(send_email, "shop@example.com", template=item)
            if fail:
                raise ValueError("payment declined")
    except ValueError as exc:
        raise HTTPException(402, str(exc)) from exc
    return {"receipt": receipt.id}
