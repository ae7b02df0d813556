"""The example service under a real uvicorn: its notification writes the line, then POSTs the
webhook, each a step. A webhook that refuses the first POST makes the task retry; the retry
POSTs the same note again and does not write the line a second time."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import httpx
import pytest

from afterwork import TaskState
from afterwork.stores import open_store

from ..procs import Server, wait_for

EXAMPLE = "examples.server_details:app"


class Webhook(BaseHTTPRequestHandler):
    """Refuses the first POST (a 500), takes the others; keeps every body."""

    bodies: ClassVar[list[dict[str, object]]] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length", "0"))
        self.bodies.append(json.loads(self.rfile.read(length)))
        self.send_response(500 if len(self.bodies) == 1 else 200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[str]:
    Webhook.bodies = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Webhook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()


def test_a_failed_webhook_is_posted_again_and_the_line_written_once(
        webhook: str, tmp_path: Path) -> None:
    notes = tmp_path / "notifications.jsonl"
    url = f"sqlite:///{tmp_path}/aw.db"
    env = {"AFTERWORK_URL": url, "NOTIFICATIONS_FILE": str(notes), "NOTIFY_WEBHOOK_URL": webhook}
    server = Server(EXAMPLE, env, tmp_path / "server.log")
    try:
        body = {"hostname": "db1", "ip": "10.0.0.7", "cpus": 8, "memory_gb": 32}
        r = httpx.post(f"{server.url}/abcd", json=body, timeout=10)
        assert r.status_code == 201
        task_id = r.json()["notification_task"]

        def done() -> bool:
            state = httpx.get(f"{server.url}/afterwork/api/tasks/{task_id}", timeout=5).json()
            return bool(state["state"] == "succeeded")

        wait_for(done, 30, f"the notification to succeed\n{server.output()}")
    finally:
        server.stop()
    written = [json.loads(line) for line in notes.read_text().splitlines()]
    assert len(written) == 1, written  # the retry did not write the line again
    assert Webhook.bodies == [written[0], written[0]]  # the same note, POSTed twice
    store = open_store(url)
    store.open()
    try:
        record = store.get(task_id)
        assert record is not None and record.state is TaskState.SUCCEEDED and record.attempts == 2
        assert [(s.name, s.state, s.runs) for s in store.steps_of(task_id)] == [
            ("write the line", "finished", 1), ("post to the webhook", "finished", 2)]
    finally:
        store.close()
