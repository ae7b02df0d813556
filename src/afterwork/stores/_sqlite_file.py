"""What a SQLite file needs that a database server would not: its write lock, waited for by
polling; WAL mode switched in while another process may be switching it too; a full disk;
which file a path names; and SQLite's errors said as afterwork's (`SqliteStore` uses these).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time

from .._errors import StoreError, StoreUnavailableError

WRITE_POLL_MS = 1  # a file's writer tries again for another process's write lock this often


def begin_polling(conn: sqlite3.Connection, wait_seconds: float) -> None:
    """BEGIN IMMEDIATE on a file: the write lock, tried every WRITE_POLL_MS (the writer's own
    busy timeout) for up to `wait_seconds`. SQLite's own busy handler sleeps 1, 2, 5, 10, 15,
    20, 25 ms and then 50 and 100 ms between tries, so while a web app and its `afterwork
    worker` took the lock in turn, a write that missed it slept up to 100 ms at a time, during
    which the other process took it again: the app's p99 was 130-218 ms against a p50 of
    4.4 ms (benchmarks/run.py, afterwork_sqlite_worker)."""
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            conn.execute("BEGIN IMMEDIATE")  # a miss sleeps WRITE_POLL_MS in SQLite
            return
        except sqlite3.OperationalError as exc:
            if not is_busy(exc) or time.monotonic() >= deadline:
                raise


def into_wal(conn: sqlite3.Connection, seconds: float) -> None:
    """WAL mode. Switching a new database needs its exclusive lock, and SQLite answers "database
    is locked" at once, without its busy handler, when another process is switching it at the
    same moment (a web app and its worker started together): retried up to the busy timeout."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.005)


def reclaim(conn: sqlite3.Connection, wait_seconds: float) -> None:
    """The disk is full: copy the -wal into the database and truncate it. The -wal holds many
    versions of the same pages and grows to about 4 MB before SQLite checkpoints on its own,
    so this often frees enough for the next writes. It waits for readers up to
    `wait_seconds` (the writer's own busy timeout is a poll's: see `begin_polling`)."""
    with contextlib.suppress(sqlite3.Error):
        conn.execute(f"PRAGMA busy_timeout={int(wait_seconds * 1000)}")
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.execute(f"PRAGMA busy_timeout={WRITE_POLL_MS}")


def identity(st: os.stat_result) -> tuple[int, int]:
    """Which file a stat names: (device, inode)."""
    return (st.st_dev, st.st_ino)


def is_busy(exc: sqlite3.OperationalError) -> bool:
    text = str(exc)
    return "locked" in text or "busy" in text


def translate(path: str, exc: sqlite3.Error) -> StoreError:
    """A SQLite error on `path` as afterwork's: what happened, and what to do."""
    text = str(exc)
    if isinstance(exc, sqlite3.OperationalError) and is_busy(exc):
        return StoreUnavailableError(
            f"SQLite store {path} stayed locked past the store timeout ({text}); another "
            "process holds a long write transaction: retry, or raise store_timeout_seconds"
        )
    if isinstance(exc, sqlite3.OperationalError):
        return StoreUnavailableError(
            f"SQLite store {path} cannot be written ({text}): check the file's permissions "
            "and the free disk space"
        )
    return StoreError(f"SQLite store {path} refused the write ({text}); nothing was written")
