"""Whether this process reaches its store. A runner that lost it keeps retrying, with
back-off, and says so once: one line when contact is lost, one when it is back (with how long
it was gone and how many attempts failed meanwhile), never a line per attempt: a store down
for an hour must not bury the log of every host under thousands of identical warnings."""

from __future__ import annotations

import logging
import threading
import time

log = logging.getLogger("afterwork")

BACKOFF_DOUBLINGS_MOST = 16  # 2**16 times the base is past any cap: stop multiplying


class StoreContact:
    """Lost or in contact, shared by the writer and the runner of one Afterwork."""

    def __init__(self, cap_seconds: float) -> None:
        self.cap_seconds = cap_seconds
        self._lock = threading.Lock()
        self._lost_at: float | None = None  # monotonic, while the store is out of reach
        self._failures = 0

    @property
    def lost(self) -> bool:
        return self._lost_at is not None

    def failed(self, doing: str, exc: Exception) -> None:
        """An attempt found the store out of reach; only the first since contact says so."""
        with self._lock:
            self._failures += 1
            first = self._lost_at is None
            if first:
                self._lost_at = time.monotonic()
        if first:
            log.warning("afterwork: lost the store while %s (%s); retrying with back-off (at "
                        "most %.1fs apart); running tasks go on and their outcomes wait",
                        doing, exc, self.cap_seconds)
        else:
            log.debug("afterwork: the store is still out of reach (%s)", exc)

    def succeeded(self) -> None:
        """An attempt reached the store: if it had been lost, say it is back."""
        if self._lost_at is None:  # the common case: no lock
            return
        with self._lock:
            lost_at, failures = self._lost_at, self._failures
            self._lost_at, self._failures = None, 0
        if lost_at is not None:
            log.warning("afterwork: the store is back after %.1fs (%d attempt(s) failed "
                        "meanwhile)", time.monotonic() - lost_at, failures)

    def backoff(self, base: float) -> float:
        """How long to wait before the next attempt: `base` in contact, doubled per failure
        since contact was lost, at most `cap_seconds` (and never below `base`)."""
        failures = self._failures
        if not failures:
            return base
        return float(max(base, min(self.cap_seconds,
                               base * 2 ** min(failures - 1, BACKOFF_DOUBLINGS_MOST))))
