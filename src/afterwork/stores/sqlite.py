"""The embedded default: one SQLite file in WAL mode, shared by any number of processes."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from .._errors import ConfigurationError, StoreError, StoreUnavailableError
from ._sql import Cursor, SqlStore

BUSY_TIMEOUT_SECONDS = 5.0
_SYNCHRONOUS = ("full", "normal", "extra")


def _translate(path: str, exc: sqlite3.Error) -> StoreError:
    text = str(exc)
    if isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text):
        return StoreUnavailableError(
            f"SQLite store {path} stayed locked past the busy timeout ({text}); another "
            "process holds a long write transaction: retry, or raise ?busy_timeout= in the URL"
        )
    if isinstance(exc, sqlite3.OperationalError):
        return StoreUnavailableError(
            f"SQLite store {path} cannot be written ({text}): check the file's permissions "
            "and the free disk space"
        )
    return StoreError(f"SQLite store {path} refused the write ({text}); nothing was written")


class SqliteStore(SqlStore):
    dialect = "sqlite"

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        raw = url.split("://", 1)[1].split("?", 1)[0]
        # sqlite:///relative.db -> "relative.db"; sqlite:////abs/x.db -> "/abs/x.db"
        path = raw[1:] if raw.startswith("/") else raw
        if not path:
            raise ConfigurationError(
                f"{url!r} names no file: write sqlite:///./afterwork.db or sqlite:////abs/path.db"
            )
        options = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        self.url = url
        self.path = str(Path(path))
        self.synchronous = options.pop("synchronous", "full").lower()
        if self.synchronous not in _SYNCHRONOUS:
            raise ConfigurationError(
                f"synchronous={self.synchronous!r} in {url!r}: use one of {', '.join(_SYNCHRONOUS)}"
            )
        self.busy_timeout = float(options.pop("busy_timeout", BUSY_TIMEOUT_SECONDS))
        if options:
            raise ConfigurationError(
                f"unknown option(s) {', '.join(options)} in {url!r}: "
                "afterwork's SQLite URL takes synchronous= and busy_timeout= (seconds)"
            )
        self._write_conn: sqlite3.Connection | None = None
        self._write_lock = threading.Lock()

    def _connect(self) -> sqlite3.Connection:
        try:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                self.path, timeout=self.busy_timeout, isolation_level=None,
                check_same_thread=False,
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={self.synchronous.upper()}")
            conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout * 1000)}")
        except (sqlite3.Error, OSError) as exc:
            raise StoreUnavailableError(
                f"cannot open SQLite store {self.path} ({exc}): check the path, its "
                "permissions and the free disk space"
            ) from exc
        return conn

    def exists(self) -> bool:
        if not Path(self.path).is_file():
            return False
        try:  # mode=rw: never creates the file (should it vanish meanwhile); no pragmas run
            uri = f"{Path(self.path).resolve().as_uri()}?mode=rw"
            with closing(sqlite3.connect(uri, uri=True, timeout=self.busy_timeout)) as conn:
                found = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' "
                                     "AND name = 'afterwork_migrations'").fetchone()
        except sqlite3.DatabaseError as exc:
            if "not a database" not in str(exc):
                raise _translate(self.path, exc) from exc
            raise StoreUnavailableError(
                f"{self.path} is not a SQLite database ({exc}): check the store URL") from exc
        return found is not None

    def open(self) -> None:
        if self._write_conn is not None:
            return
        self._write_conn = self._connect()
        self._migrate()

    def _migrate(self) -> None:
        with self._write() as cur:
            cur.execute("CREATE TABLE IF NOT EXISTS afterwork_migrations "
                        "(version INTEGER PRIMARY KEY, applied_at REAL NOT NULL)")
            cur.execute("SELECT version FROM afterwork_migrations")
            done = {row[0] for row in cur.fetchall()}
            for version, script in self.migrations():
                if version in done:
                    continue
                for statement in _statements(script):
                    cur.execute(statement)
                cur.execute("INSERT INTO afterwork_migrations VALUES (?, ?)", (version, time.time()))

    @contextmanager
    def _write(self) -> Iterator[Cursor]:
        with self._write_lock:
            if self._write_conn is None:
                self._write_conn = self._connect()
            conn = self._write_conn
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise _translate(self.path, exc) from exc
            try:
                yield conn.cursor()
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise _translate(self.path, exc) from exc
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    @contextmanager
    def _read(self) -> Iterator[Cursor]:
        try:
            yield self._reader().cursor()
        except sqlite3.Error as exc:
            raise _translate(self.path, exc) from exc


def _statements(script: str) -> Iterator[str]:
    buffer = ""
    for line in script.splitlines(keepends=True):
        if not buffer and line.strip().startswith("--"):
            continue
        buffer += line
        if sqlite3.complete_statement(buffer):
            yield buffer.strip()
            buffer = ""
