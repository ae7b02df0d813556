"""Waiting in browser tests."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_until(check: Callable[[], object], what: object, timeout: float = 20.0) -> None:
    """Poll `check` (bounded by `timeout`); AssertionError saying `what` did not happen."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"not within {timeout}s: {what() if callable(what) else what}")


def left_the_page(element: object) -> bool:
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
