"""A real browser (headless Chromium, as in test_browser.py) follows a slow report of the
example service to its end: the live progress bar over Server-Sent Events, the redirect to the
page of its result, and a failure's message and retry button. With AFTERWORK_SCREENSHOT=1 it
saves docs/progress.png (the bar mid-way), the screenshot the README shows."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..procs import ROOT, Server
from .chrome import wait_until as _wait  # the browser fixture (and its skip): conftest.py


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Server]:
    env = {"AFTERWORK_URL": f"sqlite:///{tmp_path}/aw.db", "REPORT_STEPS": "8",
           "REPORT_STEP_SECONDS": "0.6", "NOTIFICATIONS_FILE": str(tmp_path / "n.jsonl")}
    server = Server("examples.server_details:app", env, tmp_path / "server.log")
    yield server
    server.stop()


def _bar(driver: object) -> tuple[float, float]:
    value = driver.execute_script(  # type: ignore[attr-defined]
        "const b = document.getElementById('bar'); return b ? [b.value, b.max] : [0, 1];")
    return float(value[0]), float(value[1])


def test_the_report_page_shows_live_progress_then_the_result(
        service: Server, browser: object, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    driver = browser
    driver.get(f"{service.url}/report")  # type: ignore[attr-defined]
    driver.find_element(By.ID, "build").click()  # type: ignore[attr-defined]
    _wait(lambda: 3 <= _bar(driver)[0] < _bar(driver)[1], lambda: f"the bar mid-way: {_bar(driver)}")
    note = driver.find_element(By.ID, "note").text  # type: ignore[attr-defined]
    assert " of 8: building " in note, note
    keep = os.environ.get("AFTERWORK_SCREENSHOT")
    shot = ROOT / "docs" / "progress.png" if keep else tmp_path / "progress.png"
    driver.set_window_size(800, 360)  # type: ignore[attr-defined]  # the page, not the window
    driver.save_screenshot(str(shot))  # type: ignore[attr-defined]
    assert shot.stat().st_size > 3_000  # a real picture of the page

    _wait(lambda: "/report/" in driver.current_url, "the redirect to the result")  # type: ignore[attr-defined]
    _wait(lambda: driver.find_elements(By.ID, "title"), "the result page")  # type: ignore[attr-defined]
    assert driver.find_element(By.ID, "title").text == "Fleet report"  # type: ignore[attr-defined]
    # 31.25 GB x (1 + ... + 8): the Decimal went through the store and back, exact
    assert driver.find_element(By.ID, "total").text == "1125.00 GB"  # type: ignore[attr-defined]


def test_a_failed_report_says_so_and_trying_again_builds_it(
        service: Server, browser: object) -> None:
    from selenium.webdriver.common.by import By

    driver = browser
    driver.get(f"{service.url}/report")  # type: ignore[attr-defined]
    driver.find_element(By.ID, "fail").click()  # type: ignore[attr-defined]
    driver.find_element(By.ID, "build").click()  # type: ignore[attr-defined]
    failed = driver.find_element(By.ID, "failed")  # type: ignore[attr-defined]
    _wait(failed.is_displayed, "the failure's message")
    assert "could not be built at step 3 of 8" in failed.text, failed.text
    assert "Traceback" not in driver.page_source  # type: ignore[attr-defined]  # errors stay private
    driver.find_element(By.ID, "again").click()  # type: ignore[attr-defined]
    _wait(lambda: "/report/" in driver.current_url, "the retried report's page", timeout=30)  # type: ignore[attr-defined]
    _wait(lambda: driver.find_elements(By.ID, "total"), "the result page")  # type: ignore[attr-defined]
