"""The embedded default: one SQLite file in WAL mode, shared by any number of processes.

Two faults of a file that a server would not have are handled here. Leases are on the
machine's boot clock (`_clock.py`), so no wall-clock jump or skew can expire a live lease.
A file deleted or replaced under the running app (its path now names another file, or
none) is noticed after each commit by comparing the path's (device, inode) with the file the
connection writes: the write is reported as failed (StoreReplacedError, a 503 for a request)
instead of succeeding into a file nobody will read, and the next write reopens the path.

`memory://` is this store on a database in memory instead of a file: the same SQL, locks and
transactions, not durable, for tests. Each store object has a database of its own, shared by
its connections through SQLite's `memdb` VFS: a read that meets a write transaction waits
for it (busy timeout), where a shared-cache database would fail it at once; there is no WAL,
so reads wait for writes instead of reading beside them. No file, so no file checks. The
database lives as long as the store object: `close()` ends the connections that read and
write, and the tasks are still there when it opens again, as they would be in a file.
"""

from __future__ import annotations

import os
import sqlite3
import uuid
import weakref
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from functools import partial
from itertools import compress
from operator import is_not
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .._errors import ConfigurationError, StoreReplacedError, StoreUnavailableError
from ._clock import LEASE_CLOCK, lease_now
from ._dbapi import Cursor
from ._file_watch import watch
from ._sql import SqlStore
from ._sqlite_file import WRITE_POLL_MS, begin_polling, identity, into_wal, reclaim, translate
from ._statements import INSERT

BUSY_TIMEOUT_STEP = 0.9  # reset the busy timeout only when a write's bound is below 90% of it
_SYNCHRONOUS = ("full", "normal", "extra")
MEMORY_URL = "memory://"
_is_present = partial(is_not, None)  # value -> whether it is not None (in C, for map())
HAS_SCHEMA = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'afterwork_migrations'"


class _MemoryConnection(sqlite3.Connection):
    """A connection to a store's database in memory: listed among its store's open ones
    until it closes, so that whatever is still open closes with the store object (the
    keeper always; others when the object was never closed)."""

    still_open: set[_MemoryConnection]

    def close(self) -> None:
        super().close()
        self.still_open.discard(self)


def _close_all(connections: set[_MemoryConnection]) -> None:
    for conn in list(connections):
        conn.close()


class SqliteStore(SqlStore):
    lease_now_sql = "afterwork_lease_now()"  # registered on each connection: _clock.lease_now

    def __init__(self, url: str) -> None:
        super().__init__(url)
        parts = urlsplit(url)
        self.in_memory = parts.scheme.lower() == "memory"
        if self.in_memory:
            self.path = MEMORY_URL  # what messages name
            # memdb: one database per name in this process, gone with its last connection.
            self._target = f"file:/afterwork-{uuid.uuid4()}?vfs=memdb"
            self._memory_connections: set[_MemoryConnection] = set()
            self._memory_keeper: sqlite3.Connection | None = None
            weakref.finalize(self, _close_all, self._memory_connections)
        else:
            raw = url.split("://", 1)[1].split("?", 1)[0]
            # sqlite:///relative.db -> "relative.db"; sqlite:////abs/x.db -> "/abs/x.db"
            path = raw[1:] if raw.startswith("/") else raw
            if not path:
                raise ConfigurationError(
                    f"{url!r} names no file: write sqlite:///./afterwork.db or "
                    "sqlite:////abs/path.db"
                )
            self.path = self._target = str(Path(path))
        options = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        self.synchronous = options.pop("synchronous", "full").lower()
        if self.synchronous not in _SYNCHRONOUS:
            raise ConfigurationError(
                f"synchronous={self.synchronous!r} in {url!r}: use one of {', '.join(_SYNCHRONOUS)}"
            )
        busy = options.pop("busy_timeout", None)
        self._busy_timeout = float(busy) if busy is not None else None
        if options:
            raise ConfigurationError(
                f"unknown option(s) {', '.join(options)} in {url!r}: "
                "afterwork's SQLite URL takes synchronous= and busy_timeout= (seconds)"
            )
        self._null_shapes: dict[tuple[str, tuple[bool, ...]], str] = {}  # see _insert
        self._file_id: tuple[int, int] | None = None  # (st_dev, st_ino) the writer writes
        self._busy_seconds = 0.0  # the write connection's busy timeout now

    @property
    def busy_timeout(self) -> float:
        """How long a write waits for another process's lock: `?busy_timeout=` in the URL,
        else the store timeout (`Afterwork(store_timeout_seconds=...)`)."""
        return self._busy_timeout if self._busy_timeout is not None else self.timeout_seconds

    def _connect(self) -> sqlite3.Connection:
        try:
            if self.in_memory:
                conn = self._connect_memory()
            else:
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(
                    self.path, timeout=self.busy_timeout, isolation_level=None,
                    check_same_thread=False,
                )
                into_wal(conn, self.busy_timeout)
                conn.execute(f"PRAGMA synchronous={self.synchronous.upper()}")
            conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout * 1000)}")
            conn.create_function("afterwork_lease_now", 0, lease_now)
        except (sqlite3.Error, OSError) as exc:
            raise StoreUnavailableError(
                f"cannot open SQLite store {self.path} ({exc}): check the path, its "
                "permissions and the free disk space"
            ) from exc
        return conn

    def _connect_memory(self) -> sqlite3.Connection:
        """A connection to this store's database in memory (WAL and synchronous mean nothing
        there). The first one made keeps the database for the store object's life."""
        def connect() -> sqlite3.Connection:
            try:
                conn = sqlite3.connect(self._target, uri=True, timeout=self.busy_timeout,
                                       isolation_level=None, check_same_thread=False,
                                       factory=_MemoryConnection)
            except sqlite3.OperationalError as exc:
                if "vfs" not in str(exc):
                    raise
                raise StoreUnavailableError(
                    f"memory:// needs SQLite 3.36 or newer (its memdb VFS); this Python has "
                    f"SQLite {sqlite3.sqlite_version} ({exc}): use sqlite:/// with a file"
                ) from exc
            conn.still_open = self._memory_connections
            conn.still_open.add(conn)
            return conn

        if self._memory_keeper is None:
            self._memory_keeper = connect()
        return connect()

    def exists(self) -> bool:
        if self.in_memory:  # asks the database itself: nothing on disk to create
            with self._read() as cur:
                cur.execute(HAS_SCHEMA)
                return cur.fetchone() is not None
        if not Path(self.path).is_file():
            return False
        try:  # mode=rw: never creates the file (should it vanish meanwhile); no pragmas run
            uri = f"{Path(self.path).resolve().as_uri()}?mode=rw"
            with closing(sqlite3.connect(uri, uri=True, timeout=self.busy_timeout)) as conn:
                found = conn.execute(HAS_SCHEMA).fetchone()
        except sqlite3.DatabaseError as exc:
            if "not a database" not in str(exc):
                raise translate(self.path, exc) from exc
            raise StoreUnavailableError(
                f"{self.path} is not a SQLite database ({exc}): check the store URL") from exc
        return found is not None

    def open(self) -> None:
        with self._write_lock:
            if self._write_conn is None:
                self._open_writer()

    def _open_writer(self) -> sqlite3.Connection:
        """Connect the writer, note which file it writes, create/migrate the schema."""
        conn = self._connect()
        try:
            if not self.in_memory:
                self._file_id = identity(os.stat(self.path))
                conn.execute(f"PRAGMA busy_timeout={WRITE_POLL_MS}")  # see _begin
            self._busy_seconds = self.busy_timeout
            self._in_transaction(conn, self.migrate)
        except BaseException:
            conn.close()
            raise
        self._write_conn = conn
        return conn

    # Migrating: BEGIN IMMEDIATE already keeps every other writer out (no lock of its own).

    def _script_statements(self, script: str) -> Iterator[str]:
        """One statement at a time (sqlite3 executes one a call)."""
        buffer = ""
        for line in script.splitlines(keepends=True):
            if not buffer and line.strip().startswith("--"):
                continue
            buffer += line
            if sqlite3.complete_statement(buffer):
                yield buffer.strip()
                buffer = ""

    def _after_migration(self, cur: Cursor) -> None:
        # Lease times of another boot of this machine (or of another machine, for a copied
        # file) are meaningless on this boot's clock: their runners are gone, expire them.
        cur.execute("SELECT value FROM afterwork_clock WHERE name = 'lease_clock'")
        row = cur.fetchone()
        if row is None or row[0] != LEASE_CLOCK:
            cur.execute("UPDATE afterwork_tasks SET lease_until = 0 "
                        "WHERE state IN ('leased', 'running')")
            cur.execute("INSERT INTO afterwork_clock VALUES ('lease_clock', ?) ON CONFLICT (name) "
                        "DO UPDATE SET value = excluded.value", (LEASE_CLOCK,))

    def _leased_insert(self) -> tuple[str, float]:
        """The lease's end, read once for the group from the clock SQLite would call back
        for each row (`lease_now`, this machine's boot clock): not a call into Python per row
        from inside the statement, which takes the GIL back in the middle of the step."""
        return INSERT, lease_now() + self.lease_seconds

    def _insert(self, cur: Cursor, statement: str, rows: list[tuple[Any, ...]]) -> None:
        """Absent values go into the statement as NULL rather than as bound None: binding None
        costs Python's sqlite3 a look for an adapter, two failed attribute lookups that each
        raise and clear an AttributeError before Python 3.12 (about 2,000 instructions a value,
        11 values in a plain task's row: a fifth of its insert). Rows run in order, one
        `executemany` per run of rows with the same absent columns (one for a group of plain
        tasks; a chain's first task differs from the rest)."""
        sql = self._sql(statement)
        shape: tuple[bool, ...] | None = None
        run: list[tuple[Any, ...]] = []
        for row in rows:
            present = tuple(map(_is_present, row))
            if present != shape:
                if run:
                    cur.executemany(self._with_nulls(sql, shape), run)  # type: ignore[arg-type]
                shape, run = present, []
            run.append(tuple(compress(row, present)))
        if run:
            cur.executemany(self._with_nulls(sql, shape), run)  # type: ignore[arg-type]

    def _with_nulls(self, sql: str, present: tuple[bool, ...]) -> str:
        """`sql` (one `?` per value of `present`) with NULL for each value not present."""
        found = self._null_shapes.get((sql, present))
        if found is None:
            parts = sql.split("?")
            if len(parts) != len(present) + 1:
                raise ValueError(f"{len(parts) - 1} parameters in an INSERT of {len(present)} values")
            found = parts[0] + "".join(("?" if p else "NULL") + part
                                       for p, part in zip(present, parts[1:], strict=True))
            if len(self._null_shapes) < self.TRANSLATED_MOST:
                self._null_shapes[(sql, present)] = found
        return found

    def _in_transaction(self, conn: sqlite3.Connection, work: Callable[[Cursor], None]) -> None:
        with self._transaction(conn) as cur:
            work(cur)

    @contextmanager
    def _transaction(self, conn: sqlite3.Connection) -> Iterator[Cursor]:
        try:
            self._begin(conn)
        except sqlite3.Error as exc:
            raise translate(self.path, exc) from exc
        try:
            yield conn.cursor()
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if "full" in str(exc) and not self.in_memory:  # SQLITE_FULL (its code: 3.11+)
                reclaim(conn, self._busy_seconds)
            raise translate(self.path, exc) from exc
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    @contextmanager
    def _write(self, timeout_seconds: float | None = None) -> Iterator[Cursor]:
        with self._write_lock:
            conn = self._write_conn or self._open_writer()
            self._bound_wait(conn, timeout_seconds)
            with self._transaction(conn) as cur:
                yield cur
            self._check_file()

    def _begin(self, conn: sqlite3.Connection) -> None:
        """BEGIN IMMEDIATE: the write lock, waited for up to `_busy_seconds`: on a file by
        polling (`_sqlite_file.begin_polling`, which says why); a database in memory keeps
        SQLite's handler: its commits also wait for readers."""
        if self.in_memory:
            conn.execute("BEGIN IMMEDIATE")
            return
        begin_polling(conn, self._busy_seconds)

    def _bound_wait(self, conn: sqlite3.Connection, timeout_seconds: float | None) -> None:
        """A write waits for other processes' locks at most `timeout_seconds` (what is left
        of its requests' store timeout); in memory, the pragma is set again only when that
        changes much (a file's writer waits in `_begin`)."""
        wanted = self.busy_timeout if timeout_seconds is None else max(0.0, timeout_seconds)
        if not self.in_memory:
            self._busy_seconds = wanted
        elif wanted < self._busy_seconds * BUSY_TIMEOUT_STEP or wanted > self._busy_seconds:
            conn.execute(f"PRAGMA busy_timeout={int(wanted * 1000)}")
            self._busy_seconds = wanted

    def _check_file(self) -> None:
        """After a commit: does the path still name the file it went to? One stat a commit
        group (about a microsecond); no: the commit is lost with that file, say so. A
        database in memory has no path to lose."""
        if self.in_memory:
            return
        try:
            now = identity(os.stat(self.path))
        except OSError:
            now = None
        if now == self._file_id:
            return
        self._abandon_file()
        raise StoreReplacedError(
            f"SQLite store {self.path} was deleted or replaced while in use: the last write "
            "went to the old file and is lost. afterwork reopens the path at the next write "
            "(a new, empty store if nothing is there); restore the file to get its tasks back"
        )

    def _abandon_file(self) -> None:
        """Close every connection to the old file before anything opens the path again:
        the last connection of a file removes the -wal next to its path when it closes, which
        must not happen once a new file's -wal is there."""
        if self._write_conn is not None:
            self._write_conn.close()
            self._write_conn = None
        self._generation += 1
        self._close_readers()

    def listen(self, wake: Callable[[], None]) -> Callable[[], None]:
        """SQLite has no notifications, so a thread watches the file (`_file_watch`): every
        WATCH_SECONDS it reads `PRAGMA data_version` (it changes when another connection, of
        this process or of another, committed) and, when it changed, whether a task is ready
        to claim; if so, it calls `wake`. Without it a runner learned of another process's
        tasks by its poll, `poll_seconds` (1 s) late: a separate `afterwork worker` started
        tasks 620-740 ms after they were stored (p50, benchmarks/run.py). A request's tasks
        handed to this process's runner are stored leased, not ready, and wake nobody. The
        poll stays, for run times falling due and expired leases. A database in memory is
        this process's alone: its writes reach the runner directly."""
        if self.in_memory:
            return lambda: None
        return self._listening(watch(self, wake))

    @contextmanager
    def _read(self) -> Iterator[Cursor]:
        try:  # closed after use: an unfinished statement would hold its read lock
            with closing(self._reader().cursor()) as cur:
                yield cur
        except sqlite3.Error as exc:
            raise translate(self.path, exc) from exc
