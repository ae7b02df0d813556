"""A second SIGINT or SIGTERM during shutdown ends the process at once.

The first signal starts a graceful shutdown (tasks get `grace_seconds` to finish). An
operator who signals again wants out now: the process exits without writing anything more,
exactly like a crash, and the leases of its tasks decide who runs them next (no task is
handed back while its code may still be running).
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from types import FrameType

SIGNALS = (signal.SIGINT, signal.SIGTERM)


def force_exit(signum: int, frame: FrameType | None = None) -> None:
    # os.write, not logging: a signal handler must not wait for a lock the main thread holds.
    os.write(2, f"afterwork: signal {signum} again during shutdown: exiting now; the "
                "leases of unfinished tasks decide who runs them next\n".encode())
    os._exit(128 + signum)


@contextlib.contextmanager
def exit_on_signal() -> Iterator[None]:
    """While shutting down: any SIGINT/SIGTERM forces the exit (main thread only, where
    Python delivers signals; elsewhere a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}
    try:
        for sig in SIGNALS:
            previous[sig] = signal.signal(sig, force_exit)
    except ValueError:  # not the main interpreter
        pass
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
