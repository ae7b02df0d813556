"""Each view of the dashboard in a real browser (headless Chromium), against an app under
uvicorn: a live update arriving without a reload (and the pause control), a bulk retry of
failed tasks with its confirmation, pausing and resuming a queue, the runners and a task's
page; a phone-sized window, dark mode, the viewer's time zone, nothing loaded from outside.
With AFTERWORK_SCREENSHOT=1 it saves docs/dashboard.png (overview), docs/dashboard-queue.png
and docs/dashboard-task.png, the screenshots the README shows."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from afterwork import Afterwork, BackgroundTasks, periodic, task
from afterwork._schedule import SCHEDULES

from ..procs import ROOT
from . import dash_tasks
from .chrome import left_the_page, wait_until
from .live import serve

TOKEN = "views-browser-token"


def make_app(url: str) -> FastAPI:
    app = FastAPI()
    Afterwork(app, url=url, max_attempts=1, poll_seconds=0.05, dashboard=True, dashboard_token=TOKEN)

    @app.post("/flaky/{n}")
    def flaky(n: int, tasks: BackgroundTasks) -> dict[str, str]:
        return {"id": tasks.add_task(dash_tasks.flaky, n).id}

    @app.post("/hook/{n}")
    def hook(n: int, tasks: BackgroundTasks) -> dict[str, str]:
        return {"id": tasks.add_task(task(dash_tasks.nap).options(queue="hooks"), 0.05 * n).id}

    return app


@pytest.fixture
def site(tmp_path: Path) -> Iterator[str]:
    dash_tasks.FLAKY["failing"] = True
    nightly = periodic(cron="0 3 * * *")(dash_tasks.nightly_report)
    try:
        with serve(make_app(f"sqlite:///{tmp_path}/aw.db")) as base:
            yield base
    finally:
        SCHEDULES[:] = [s for s in SCHEDULES if s.task is not nightly]


def _state(base: str, task_id: str) -> str:
    answer: str = httpx.get(f"{base}/afterwork/api/tasks/{task_id}").json()["state"]
    return answer


def _text(driver: Any, element_id: str) -> str:
    """An element's text now (in one call: live updates replace elements under a test's feet)."""
    found: str = driver.execute_script(
        "const e = document.getElementById(arguments[0]); return e ? e.textContent : ''", element_id)
    return found


def log_in(driver: Any, site: str) -> None:
    """Log in, and wait for the overview the login redirects to: a page asked for while that
    redirect is still on its way would be replaced by the overview when it lands (a test then
    looks for the page it asked for on the overview; it happened under load)."""
    from selenium.webdriver.common.by import By

    driver.get(f"{site}/afterwork/login")
    driver.find_element(By.ID, "token").send_keys(TOKEN)
    button = driver.find_element(By.ID, "login")
    button.click()
    wait_until(lambda: left_the_page(button)
               and driver.execute_script("return document.readyState") == "complete",
               "the overview after login")


def _shot(driver: Any, tmp_path: Path, name: str) -> None:
    keep = os.environ.get("AFTERWORK_SCREENSHOT")
    shot = (ROOT / "docs" if keep else tmp_path) / name
    driver.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000  # a real picture of the page


def test_each_view_live_bulk_retry_and_queue_pause(site: str, browser: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    driver = browser
    driver.execute_cdp_cmd("Emulation.setTimezoneOverride", {"timezoneId": "Asia/Tokyo"})
    failed = [httpx.post(f"{site}/flaky/{n}").json()["id"] for n in range(3)]
    for n in range(4):
        httpx.post(f"{site}/hook/{n}")
    wait_until(lambda: all(_state(site, i) == "failed" for i in failed), "three tasks failed")

    driver.get(f"{site}/afterwork/")
    driver.find_element(By.ID, "token").send_keys(TOKEN)
    driver.find_element(By.ID, "login").click()
    wait_until(lambda: _text(driver, "count-failed") == "3", "the overview after login")

    # Live: a new failure shows without a reload (the marker survives: same document).
    wait_until(lambda: "live, updated" in _text(driver, "live-status"), "live")
    driver.execute_script("window.sameDocument = true")
    failed.append(httpx.post(f"{site}/flaky/9").json()["id"])
    wait_until(lambda: _text(driver, "count-failed") == "4", "the live update")
    assert driver.execute_script("return window.sameDocument") is True
    _shot(driver, tmp_path, "dashboard.png")
    driver.find_element(By.ID, "pause-live").click()
    assert _text(driver, "live-status") == "paused"
    driver.find_element(By.ID, "pause-live").click()  # and on again
    wait_until(lambda: "live" in _text(driver, "live-status"), "live again")

    # Times in the viewer's zone (Tokyo), UTC on hover.
    driver.find_element(By.ID, "pause-live").click()  # hold the page still from here
    stamp = driver.find_element(By.CSS_SELECTOR, "#live-recent time")
    assert stamp.get_attribute("title").endswith("UTC") and "+00:00" not in stamp.text
    # Nothing loaded from outside the app.
    sources = driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)")
    assert sources and all(s.startswith(site) for s in sources), sources

    # Bulk retry of every failed task, with a confirmation that says how many.
    dash_tasks.FLAKY["failing"] = False
    driver.get(f"{site}/afterwork/?state=failed")
    assert confirm_bulk(driver, "retry") == "Retry 4 tasks?"
    wait_until(lambda: all(_state(site, i) == "succeeded" for i in failed),
               lambda: f"the retried tasks succeeded: {[_state(site, i) for i in failed]}")

    # Pause a queue: its new tasks wait until it is resumed.
    driver.get(f"{site}/afterwork/queues")
    driver.find_element(By.ID, "pause-hooks").click()
    wait_until(lambda: driver.find_elements(By.ID, "resume-hooks"), "the queue shows as paused")
    assert "paused" in driver.find_element(By.ID, "queues").text
    waiting = httpx.post(f"{site}/hook/0").json()["id"]
    time.sleep(1.0)  # twenty claim rounds
    assert _state(site, waiting) == "queued"
    driver.get(f"{site}/afterwork/queues/hooks")
    _shot(driver, tmp_path, "dashboard-queue.png")
    driver.find_element(By.ID, "resume-hooks").click()
    wait_until(lambda: _state(site, waiting) == "succeeded", "the resumed queue's task ran")

    # Runners: this process, alive.
    driver.get(f"{site}/afterwork/runners")
    runners = driver.find_element(By.ID, "runners").text
    assert str(os.getpid()) in runners and "alive" in runners

    # Task names: figures and charts over a window.
    driver.get(f"{site}/afterwork/names")
    driver.find_element(By.LINK_TEXT, "15m").click()
    wait_until(lambda: "window=15m" in driver.current_url, "the 15 minute window")
    assert "dash_tasks:flaky" in driver.find_element(By.ID, "names").text
    assert driver.find_elements(By.CSS_SELECTOR, "svg.chart rect.p95")

    # Schedules: run the nightly one now.
    driver.get(f"{site}/afterwork/schedules")
    assert "never" in driver.find_element(By.ID, "schedules").text
    driver.find_element(By.CSS_SELECTOR, "button.run-now").click()
    wait_until(lambda: "succeeded" in _text(driver, "schedules") or driver.refresh(), "the run now ran")

    # A task's page.
    driver.get(f"{site}/afterwork/tasks/{failed[0]}")
    assert "flaky 0 failed on purpose" in driver.page_source
    _shot(driver, tmp_path, "dashboard-task.png")


def test_a_phone_sized_window_in_dark_mode(site: str, browser: Any) -> None:

    driver = browser
    driver.set_window_size(390, 844)
    driver.execute_cdp_cmd("Emulation.setEmulatedMedia",
                           {"features": [{"name": "prefers-color-scheme", "value": "dark"}]})
    log_in(driver, site)
    for view in ("", "queues", "names", "runners", "schedules"):
        driver.get(f"{site}/afterwork/{view}")
        too_wide = driver.execute_script(
            "return [...document.querySelectorAll('body *')].filter(e => !e.closest('.scroll')"
            " && e.getBoundingClientRect().right > window.innerWidth + 1).map(e => e.tagName + '#' + e.id)")
        assert too_wide == [], (view, too_wide)  # nothing sideways but inside a scrolling table
        background = driver.execute_script("return getComputedStyle(document.body).backgroundColor")
        assert background == "rgb(20, 23, 27)", background  # the dark palette
    driver.get(f"{site}/afterwork/")
    assert "No failed tasks" in _text(driver, "live-failed")


def _alert(driver: Any) -> bool:
    from selenium.common.exceptions import NoAlertPresentException

    try:
        driver.switch_to.alert  # noqa: B018  (raises while there is none)
        return True
    except NoAlertPresentException:
        return False


def confirm_bulk(driver: Any, action: str) -> str:
    """Tick "all that match", press the bulk action, accept its confirmation; the
    confirmation's text."""
    from selenium.webdriver.common.by import By

    driver.find_element(By.ID, "all-matching").click()
    driver.find_element(By.ID, f"bulk-{action}").click()
    wait_until(lambda: _alert(driver), "the confirmation")
    confirm = driver.switch_to.alert
    text: str = confirm.text
    confirm.accept()
    return text
