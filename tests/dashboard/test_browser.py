"""A real browser (Debian's headless Chromium, driven by Selenium and chromedriver) against the
example service under uvicorn: find the failed task on the dashboard, retry it, see it succeed.
(test_browser_views.py drives each view and makes the README's screenshots.)"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ..procs import Server
from .chrome import left_the_page, wait_until

TOKEN = "browser-test-token"


class Webhook(http.server.BaseHTTPRequestHandler):
    healthy = False

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(200 if Webhook.healthy else 500)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Webhook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Webhook.healthy = False
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()


def test_find_a_failed_task_retry_it_and_see_it_succeed(
    tmp_path: Path, webhook: str, browser: object
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.wait import WebDriverWait

    driver = browser
    env = {"AFTERWORK_URL": f"sqlite:///{tmp_path}/aw.db", "NOTIFICATIONS_FILE": str(tmp_path / "n.jsonl"),
           "NOTIFY_WEBHOOK_URL": webhook, "NOTIFY_MAX_ATTEMPTS": "1", "AFTERWORK_DASHBOARD_TOKEN": TOKEN}
    server = Server("examples.server_details:app", env, tmp_path / "server.log")
    try:
        body = {"hostname": "db1", "ip": "10.0.0.7", "cpus": 8, "memory_gb": 32}
        task_id = httpx.post(f"{server.url}/abcd", json=body).json()["notification_task"]
        for n in range(3):  # some successes for the chart, then the failure is the newest
            httpx.get(f"{server.url}/param/warm{n}")
        state_url = f"{server.url}/afterwork/api/tasks/{task_id}"
        wait_until(lambda: httpx.get(state_url).json()["state"] == "failed", "the notification failed")

        driver.get(f"{server.url}/afterwork/")  # type: ignore[attr-defined]
        driver.find_element(By.ID, "token").send_keys(TOKEN)  # type: ignore[attr-defined]
        driver.find_element(By.ID, "login").click()  # type: ignore[attr-defined]
        wait_until(lambda: "Failed" in driver.page_source, "the dashboard after login")  # type: ignore[attr-defined]
        driver.find_element(By.LINK_TEXT, task_id).click()  # type: ignore[attr-defined]
        assert "500" in driver.page_source  # type: ignore[attr-defined]  # the webhook's error

        Webhook.healthy = True
        button = driver.find_element(By.ID, "retry")  # type: ignore[attr-defined]
        button.click()
        # The POST and its redirect must finish before any refresh, or the refresh cancels it.
        WebDriverWait(driver, 10).until(lambda _: left_the_page(button))

        def succeeded() -> bool:
            driver.refresh()  # type: ignore[attr-defined]
            return "<td class=\"succeeded\">succeeded</td>" in driver.page_source  # type: ignore[attr-defined]

        wait_until(succeeded, lambda: f"the retried task succeeded; it is {httpx.get(state_url).text}")
    finally:
        server.stop()
