"""A SQLite file's stand-in for PostgreSQL's LISTEN: a thread per listening runner reads the
file's data version every WATCH_SECONDS and wakes the runner when another connection (of
this process or of another) committed and a task is ready to claim.

The thread keeps nothing alive: it holds its store and its runner's wake-up weakly and ends
once either is gone (an app a test left running, never shut down), as well as when told to
stop. It reads through a connection of its own (`_Reader`) and creates nothing. And it ends
before the interpreter finalizes (`atexit`): Python 3.10 crashed on exit (a segmentation
fault, after a test run that left runners running) while such threads read through the
store's connections, which the store's finalizer closed under them.
"""

from __future__ import annotations

import atexit
import inspect
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from ._statements import ANY_READY

WATCH_SECONDS = 0.025  # how often a runner's watcher reads the file's data version
EXIT_JOIN_SECONDS = 1.0  # at exit, how long each watcher is waited for
_running: dict[threading.Event, threading.Thread] = {}
_lock = threading.Lock()


class Watched(Protocol):
    """What the watch needs of a SQLite store (`SqliteStore`)."""

    path: str

    def _sql(self, statement: str) -> str: ...


def watch(store: Watched, wake: Callable[[], None]) -> threading.Event:
    """Start watching `store`'s file for `wake`; set the event returned to stop."""
    stop = threading.Event()
    store_ref = weakref.ref(store)
    wake_ref: Callable[[], Callable[[], None] | None] = (
        weakref.WeakMethod(wake) if inspect.ismethod(wake) else (lambda: wake))
    thread = threading.Thread(target=_run, args=(store_ref, wake_ref, stop), name="afterwork-listen",
                              daemon=True)
    with _lock:
        _running[stop] = thread
    thread.start()
    return stop


def _run(store_ref: Callable[[], Watched | None],
         wake_ref: Callable[[], Callable[[], None] | None], stop: threading.Event) -> None:
    reader = _Reader()
    try:
        while not stop.wait(WATCH_SECONDS):
            store = store_ref()
            if store is None or wake_ref() is None:
                return
            path, ready_sql = store.path, store._sql(ANY_READY)
            del store  # not held while waiting
            wake = wake_ref() if reader.ready_after_a_commit(path, ready_sql) else None
            if wake is not None:
                wake()
    finally:
        reader.close()
        with _lock:
            _running.pop(stop, None)


class _Reader:
    """The watch's own read-only connection, used and closed by its thread alone: never
    one of the store's readers, which `close()` and a replaced file's clean-up close from
    other threads (closing a connection another thread is reading with crashed Python
    3.10). Read-only, it cannot checkpoint or remove the -wal when it closes, so closing it
    after the file was replaced leaves the new file's -wal alone. Nothing is created: a
    path with nothing there is skipped."""

    def __init__(self) -> None:
        self.conn: sqlite3.Connection | None = None
        self.file: tuple[int, int] | None = None
        self.seen: int | None = None

    def ready_after_a_commit(self, path: str, ready_sql: str) -> bool:
        """Whether the file's data version changed since the last look and a task is ready."""
        try:
            st = os.stat(path)
        except OSError:
            self.close()
            return False
        try:
            if self.conn is None or self.file != (st.st_dev, st.st_ino):
                self.close()
                uri = f"{Path(path).resolve().as_uri()}?mode=ro"
                self.conn = sqlite3.connect(uri, uri=True, timeout=0.1, isolation_level=None)
                self.file = (st.st_dev, st.st_ino)
            version = int(self.conn.execute("PRAGMA data_version").fetchone()[0])
            if version == self.seen:
                return False
            self.seen = version
            return self.conn.execute(ready_sql, (time.time(),)).fetchone() is not None
        except sqlite3.Error:  # locked, not a store yet: look again next time
            self.close()
            return False

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.conn, self.file, self.seen = None, None, None


@atexit.register
def _stop_all() -> None:
    with _lock:
        running = list(_running.items())
    for stop, _ in running:
        stop.set()
    for _, thread in running:
        thread.join(EXIT_JOIN_SECONDS)
