"""The queues view and a filtered task list update in a real browser without a reload, and
the bulk bar deletes the tasks that match, after a confirmation that says how many."""

from __future__ import annotations

from typing import Any

import httpx

from . import dash_tasks
from .chrome import wait_until
from .test_browser_views import TOKEN, _state, _text, confirm_bulk, log_in, site  # noqa: F401  (the fixture)

BEARER = {"Authorization": f"Bearer {TOKEN}"}


def test_queues_and_a_filtered_list_update_live_and_bulk_delete(site: str, browser: Any) -> None:  # noqa: F811
    from selenium.webdriver.common.by import By

    driver = browser
    log_in(driver, site)

    # The queues view: a queue paused elsewhere, and its waiting task, show without a reload.
    driver.get(f"{site}/afterwork/queues")
    assert driver.find_elements(By.ID, "live-queues")  # the queues view, not the overview
    wait_until(lambda: "live, updated" in _text(driver, "live-status"), "live")
    driver.execute_script("window.sameDocument = true")
    httpx.post(f"{site}/afterwork/api/queues/hooks/pause", headers=BEARER)
    httpx.post(f"{site}/hook/1")
    wait_until(lambda: driver.find_elements(By.ID, "resume-hooks"), "the queue shows as paused")
    assert driver.execute_script("return window.sameDocument") is True
    assert "rated_hook: 2 / 60 s" in _text(driver, "queues")
    assert driver.find_elements(By.CSS_SELECTOR, "#queues svg.spark")
    driver.find_element(By.ID, "pause-live").click()
    assert _text(driver, "live-status") == "paused"

    # A filtered list: a new failure arrives in it live, ticked boxes stay ticked.
    dash_tasks.FLAKY["failing"] = True
    first = httpx.post(f"{site}/flaky/1").json()["id"]
    wait_until(lambda: _state(site, first) == "failed", "the first failure")
    driver.get(f"{site}/afterwork/?state=failed")
    driver.find_element(By.CSS_SELECTOR, f"input.pick[value='{first}']").click()
    driver.execute_script("window.sameDocument = true")
    second = httpx.post(f"{site}/flaky/2").json()["id"]
    wait_until(lambda: second in _text(driver, "live-recent"), "the new failure in the list")
    assert driver.execute_script("return window.sameDocument") is True
    assert driver.find_element(By.CSS_SELECTOR, f"input.pick[value='{first}']").is_selected()

    # Delete all that match, after the confirmation.
    assert confirm_bulk(driver, "delete") == "Delete 2 tasks?"
    wait_until(lambda: "delete: 2 done" in _text(driver, "bulk-result"), "the deletion")
    assert [httpx.get(f"{site}/afterwork/api/tasks/{i}").status_code for i in (first, second)] == [404] * 2
