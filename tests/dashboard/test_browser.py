"""A real browser (Debian's headless Chromium, driven by Selenium and chromedriver) against the
example service under uvicorn: find the failed task on the dashboard, retry it, see it succeed.
With AFTERWORK_SCREENSHOT=1 it saves docs/dashboard.png, the screenshot the README shows."""

from __future__ import annotations

import http.server
import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ..procs import ROOT, Server

TOKEN = "browser-test-token"
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="needs Debian's chromium and chromium-driver (.ci/run installs them)")


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


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[object]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={tmp_path / 'chrome'}", "--window-size=1200,1000"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def _wait(check: object, what: object, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise AssertionError(f"not within {timeout}s: {what() if callable(what) else what}")


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
        _wait(lambda: httpx.get(f"{server.url}/afterwork/api/tasks/{task_id}").json()["state"] == "failed",
              "the notification failed")

        driver.get(f"{server.url}/afterwork/")  # type: ignore[attr-defined]
        driver.find_element(By.ID, "token").send_keys(TOKEN)  # type: ignore[attr-defined]
        driver.find_element(By.ID, "login").click()  # type: ignore[attr-defined]
        _wait(lambda: "Failed" in driver.page_source, "the dashboard after login")  # type: ignore[attr-defined]
        driver.find_element(By.LINK_TEXT, task_id[:8]).click()  # type: ignore[attr-defined]
        assert "500" in driver.page_source  # type: ignore[attr-defined]  # the webhook's error

        Webhook.healthy = True
        button = driver.find_element(By.ID, "retry")  # type: ignore[attr-defined]
        button.click()
        # The POST and its redirect must finish before any refresh, or the refresh cancels it.
        WebDriverWait(driver, 10).until(lambda _: _left_the_page(button))

        def succeeded() -> bool:
            driver.refresh()  # type: ignore[attr-defined]
            return "<td class=\"succeeded\">succeeded</td>" in driver.page_source  # type: ignore[attr-defined]

        state_url = f"{server.url}/afterwork/api/tasks/{task_id}"
        _wait(succeeded, lambda: f"the retried task succeeded; it is {httpx.get(state_url).text}")
        driver.get(f"{server.url}/afterwork/")  # type: ignore[attr-defined]
        keep = os.environ.get("AFTERWORK_SCREENSHOT")
        shot = ROOT / "docs" / "dashboard.png" if keep else tmp_path / "dashboard.png"
        driver.save_screenshot(str(shot))  # type: ignore[attr-defined]
        assert shot.stat().st_size > 10_000  # a real picture of the page
    finally:
        server.stop()


def _left_the_page(element: object) -> bool:
    """The element's page was replaced (selenium's `staleness_of`, which newer ChromeDrivers
    break: they answer "Node with given id does not belong to the document", not "stale")."""
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException

    try:
        element.is_enabled()  # type: ignore[attr-defined]
    except StaleElementReferenceException:
        return True
    except WebDriverException as exc:
        if "does not belong to the document" in str(exc):
            return True
        raise
    return False
