"""PostgreSQL: many machines on one database. Claims with FOR UPDATE SKIP LOCKED; runners are
woken by LISTEN/NOTIFY when tasks become ready elsewhere (polling stays as a safety net).

Leases are judged on the server's clock (`clock_timestamp()` in the SQL), never on a
runner's: machines whose clocks disagree, or jump, cannot take each other's live tasks. Every
connection carries `lock_timeout` and `statement_timeout` (the store timeout), so a held lock
or a hung query fails a request with a 503 instead of holding it.

Behind a connection pooler in transaction mode (PgBouncer) the URL says so
(`afterwork_pooler=transaction`, see `_pooler`): then no state outlives a transaction.

psycopg 3 rather than asyncpg: the store runs on afterwork's writer thread (blocking calls,
like the SQLite store), and psycopg's sync API, server-side binding and error classes fit that
without a second event loop; it is also what SQLAlchemy users already have installed.
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from pydantic_core import PydanticSerializationError, to_json

from .._errors import ConfigurationError, StoreError, StoreUnavailableError
from .._models import ClaimSpec, TaskRecord
from ._dbapi import Cursor
from ._pooler import ADVICE, LOST_PREPARED, pooler_options, server_changes_between_transactions
from ._rows import from_row
from ._sql import SqlStore
from ._statements import (
    COLUMN_LIST,
    COLUMNS,
    INSERT,
    INSERT_IF_ABSENT,
    INSERT_LEASED,
    LEASE_NOW,
    READY_EXPIRED,
    READY_ORDER,
    READY_QUEUED,
    TASKS_TABLE,
)

log = logging.getLogger("afterwork")

CHANNEL = "afterwork"
MIGRATION_LOCK = 0x61667477  # pg_advisory_xact_lock key: one migrator at a time
LISTEN_RETRY_SECONDS = 2.0
SERVER_NOW = "CAST(EXTRACT(EPOCH FROM clock_timestamp()) AS DOUBLE PRECISION)"
TIMEOUT_STEP = 0.9  # tighten a transaction's timeouts only below 90% of the connection's
# And every statement planned with its own parameters: psycopg prepares a statement after its
# fifth run, and PostgreSQL then may switch to a generic plan costed on the statistics of that
# moment. The tasks table grows from empty to tens of thousands of rows within seconds (a
# burst), long before autovacuum analyzes it: a generic plan made while it looked empty
# scanned the whole table for every group of outcomes (a drain fell from 10,000 to 450
# tasks/s). A custom plan costs a fraction of a millisecond per statement, and a group's
# statements serve hundreds of tasks.
_SET_TIMEOUTS = ("SELECT set_config('lock_timeout', %s, {local}), "
                 "set_config('statement_timeout', %s, {local}), "
                 "set_config('plan_cache_mode', 'force_custom_plan', {local})")

# Each condition of a ready task picks from its own partial index, its rows locked as they
# are picked (skipping those another claimer holds); the merge takes the first `limit`.
_PICK = ("SELECT id, priority, run_at FROM afterwork_tasks WHERE {where}{filter} "
         f"{READY_ORDER} LIMIT %s FOR UPDATE SKIP LOCKED")
_CLAIM = (
    f"WITH queued AS ({_PICK.format(where=READY_QUEUED, filter='{filter}')}), "
    f"expired AS ({_PICK.format(where=READY_EXPIRED, filter='{filter}')}), "
    "ready AS (SELECT id FROM (SELECT * FROM queued UNION ALL SELECT * FROM expired) r "
    f"{READY_ORDER} LIMIT %s) "
    f"UPDATE afterwork_tasks t SET state = 'leased', lease_owner = %s, lease_until = {LEASE_NOW} + %s "
    f"FROM ready WHERE t.id = ready.id RETURNING {', '.join('t.' + c for c in COLUMNS)}"
)


# A group's rows and outcomes go to the server as one JSON array each, one statement each,
# not as one parameter per value: psycopg dumps each parameter, and each element of an array,
# in Python (counted by function: the INSERT cost the writer about 93,000 instructions a task,
# the five arrays of its success 87,000; now 19,000 and 8,000); the whole group is encoded by pydantic-core
# (Rust; the stdlib's encoder before Python 3.13 makes a string per token) and the server
# takes the values apart (`e->>i`, cast to the column's type). Elements come in the array's
# order (WITH ORDINALITY): the first of two rows with one key wins, as before.
_TYPED = {"attempts": "integer", "max_attempts": "integer", "seq": "integer", "priority": "integer",
          "timeout_seconds": "double precision", "lease_until": "double precision",
          "run_at": "double precision", "created_at": "double precision",
          "started_at": "double precision", "finished_at": "double precision"}
_ELEMENTS = "FROM jsonb_array_elements(%s::jsonb) WITH ORDINALITY AS v(e, n)"


def _to_json(values: list[Any]) -> str:
    """`values` (rows as tuples, or plain values) as one JSON array. JSON has no infinity or
    NaN: such a float (an infinite timeout, say) goes as the text PostgreSQL reads as one,
    like any value whose JSON spelling needs Python's encoder (a lone surrogate: the server
    then refuses the write, as it would the value alone)."""
    try:
        text = to_json(values)
    except PydanticSerializationError:
        return json.dumps(_spelled(values))
    if b"Infinity" in text or b"NaN" in text:  # rare (or only inside a text): look closer
        return json.dumps(_spelled(values))
    return text.decode()


def _spelled(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value).replace("inf", "Infinity").replace("nan", "NaN")
    if isinstance(value, list | tuple):
        return [_spelled(v) for v in value]
    return value


def _insert_from_json(statement: str) -> str:
    """`statement` (an INSERT of COLUMNS, one row) as an INSERT of every row of a JSON array."""
    values = [f"(e->>{i})::{_TYPED.get(column, 'text')}" for i, column in enumerate(COLUMNS)]
    if statement is INSERT_LEASED:  # lease_until holds the lease's length: on the server's clock
        at = COLUMNS.index("lease_until")
        values[at] = f"{SERVER_NOW} + {values[at]}"
    conflict = " ON CONFLICT DO NOTHING" if statement is INSERT_IF_ABSENT else ""
    return (f"INSERT INTO {TASKS_TABLE} ({COLUMN_LIST}) SELECT {', '.join(values)} {_ELEMENTS} "
            f"ORDER BY n{conflict}")


_INSERTS = {statement: _insert_from_json(statement)
            for statement in (INSERT, INSERT_IF_ABSENT, INSERT_LEASED)}
# The same fencing as MARK_STARTED_AND_SUCCEEDED_SQL and UNBLOCK in _statements.py.
_MARK_STARTED_AND_SUCCEEDED_MANY = (
    "UPDATE afterwork_tasks t SET state = 'succeeded', attempts = t.attempts + 1, "
    "started_at = v.started_at, finished_at = v.finished_at, lease_owner = NULL, "
    "lease_until = NULL, last_error = NULL, history = COALESCE(t.history, '') || v.note "
    "FROM (SELECT (e->>0)::double precision AS started_at, (e->>1)::double precision AS "
    f"finished_at, e->>2 AS note, e->>3 AS id, e->>4 AS owner {_ELEMENTS}) AS v "
    "WHERE t.id = v.id AND t.lease_owner = v.owner AND t.state IN ('leased', 'running')"
)
_UNBLOCK_MANY = (
    "UPDATE afterwork_tasks n SET waiting_on = NULL WHERE n.waiting_on IN "
    "(SELECT jsonb_array_elements_text(%s::jsonb)) "
    "AND EXISTS (SELECT 1 FROM afterwork_tasks p WHERE p.id = n.waiting_on AND p.state = 'succeeded')"
)


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError as exc:
        raise ConfigurationError(
            "the PostgreSQL store needs psycopg 3: pip install 'afterwork[postgres]'"
        ) from exc
    return psycopg


class PostgresStore(SqlStore):
    lease_now_sql = SERVER_NOW
    param_mark = "%s"
    minute_of_finish = "FLOOR(finished_at / 60)"  # PostgreSQL's CAST rounds

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self._psycopg = _psycopg()
        self.pooler = pooler_options(url)

    @property
    def _where(self) -> str:
        return self.pooler.dsn.split("@")[-1]  # never echo a password

    def _translate(self, exc: Exception) -> StoreError:
        where = self._where
        if getattr(exc, "sqlstate", None) in LOST_PREPARED:
            return StoreError(f"PostgreSQL store {where} lost a prepared statement ({exc}): a "
                              f"connection pooler in transaction mode is in between; {ADVICE}")
        if isinstance(exc, self._psycopg.OperationalError):
            return StoreUnavailableError(
                f"PostgreSQL store {where} is unreachable or refused the write ({exc}); "
                "check that the server is up and the URL is right"
            )
        return StoreError(f"PostgreSQL store {where} refused the write ({exc}); nothing was written")

    def _connect(self) -> Any:
        extra = {} if "connect_timeout" in self.url else {
            "connect_timeout": max(2, math.ceil(self.timeout_seconds))}
        try:
            conn = self._psycopg.connect(self.pooler.dsn, autocommit=True, **extra,
                                         **self.pooler.connect_kwargs())
        except self._psycopg.Error as exc:
            raise self._translate(exc) from exc
        if self.pooler.transaction_pooling:
            return conn  # timeouts are set in each transaction (`_set_timeouts`)
        try:
            ms = _ms(self.timeout_seconds)
            conn.execute(_SET_TIMEOUTS.format(local="false"), (ms, ms))
        except self._psycopg.Error as exc:
            conn.close()
            raise self._translate(exc) from exc
        return conn

    def open(self) -> None:
        if self._write_conn is not None:
            return
        self._write_conn = self._connect()
        if not self.pooler.transaction_pooling:
            self._refuse_transaction_pooling()
        with self._write() as cur:
            self.migrate(cur)

    def _refuse_transaction_pooling(self) -> None:
        try:
            pooled = server_changes_between_transactions(self._write_conn, self._connect)
        except self._psycopg.Error as exc:
            self.close()
            raise self._translate(exc) from exc
        if pooled:
            self.close()
            raise ConfigurationError(
                f"PostgreSQL store {self._where}: a connection pooler in transaction mode is "
                "in between (this connection's server process changed between two "
                f"transactions), and afterwork would lose its session state there; {ADVICE}")

    def _set_timeouts(self, cur: Cursor, timeout_seconds: float | None) -> None:
        """Tighten this transaction's timeouts; behind a transaction pooler, set them in every
        transaction (the connection's own settings would stay on a shared server process)."""
        if timeout_seconds is None or timeout_seconds >= self.timeout_seconds * TIMEOUT_STEP:
            if not self.pooler.transaction_pooling:
                return
            timeout_seconds = min(timeout_seconds or self.timeout_seconds, self.timeout_seconds)
        ms = _ms(timeout_seconds)
        cur.execute(_SET_TIMEOUTS.format(local="true"), (ms, ms))

    def _lock_for_migration(self, cur: Cursor) -> None:
        # Migrations may wait for another process's, and may take long on a big table.
        cur.execute(_SET_TIMEOUTS.format(local="true"), ("0", "0"))
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))

    def exists(self) -> bool:
        with self._read() as cur:  # to_regclass follows the URL's search_path
            cur.execute("SELECT to_regclass('afterwork_migrations') IS NOT NULL")
            return bool(cur.fetchone()[0])

    def dialect_sql(self, script: str) -> str:
        return re.sub(r"\bREAL\b", "DOUBLE PRECISION", script)

    @contextmanager
    def _write(self, timeout_seconds: float | None = None) -> Iterator[Cursor]:
        with self._write_lock:
            if self._write_conn is None or self._write_conn.closed:
                self._write_conn = self._connect()
            try:
                with self._write_conn.transaction(), self._write_conn.cursor() as cur:
                    self._set_timeouts(cur, timeout_seconds)
                    yield cur
            except self._psycopg.Error as exc:
                if self._write_conn.broken:  # closed, not just dropped: nothing left open
                    broken, self._write_conn = self._write_conn, None
                    broken.close()
                raise self._translate(exc) from exc

    @contextmanager
    def _read(self) -> Iterator[Cursor]:
        conn = self._reader()
        try:
            if not self.pooler.transaction_pooling:
                with conn.cursor() as cur:
                    yield cur
                return
            with conn.transaction(), conn.cursor() as cur:
                self._set_timeouts(cur, None)
                yield cur
        except self._psycopg.Error as exc:
            if conn.broken:
                self._drop_reader()
            raise self._translate(exc) from exc

    def _notify(self, cur: Cursor) -> None:
        cur.execute("SELECT pg_notify(%s, '')", (CHANNEL,))  # delivered at commit

    def _serialize_limited_claims(self, cur: Cursor, spec: ClaimSpec) -> None:
        # Counting a queue's running tasks and claiming up to its limit must not interleave
        # with another runner doing the same: one advisory lock per limit, for the
        # transaction, taken in one order by every runner (no deadlock between two).
        for key in sorted([f"afterwork-queue:{q}" for q in spec.queue_limits]
                          + [f"afterwork-rate:{n}" for n in spec.rate_limits]):
            cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (key,))

    def _insert(self, cur: Cursor, statement: str, rows: list[tuple[Any, ...]]) -> None:
        cur.execute(_INSERTS[statement], (_to_json(rows),))

    def _mark_started_and_succeeded(self, cur: Cursor, rows: list[tuple[float, float, str, str, str]]
                                    ) -> None:
        cur.execute(_MARK_STARTED_AND_SUCCEEDED_MANY, (_to_json(rows),))

    def _unblock(self, cur: Cursor, task_ids: list[str]) -> bool:
        cur.execute(_UNBLOCK_MANY, (_to_json(task_ids),))
        return bool(cur.rowcount > 0)

    def _claim_pass(self, cur: Cursor, owner: str, now: float, limit: int,
                    sql_filter: str, params: list[Any]) -> list[TaskRecord]:
        sql = _CLAIM.format(filter=sql_filter)
        cur.execute(self._sql(sql), (now, *params, limit, owner, *params, limit, limit,
                                     owner, self.lease_seconds))
        return [from_row(r) for r in cur.fetchall()]

    def listen(self, wake: Callable[[], None]) -> Callable[[], None]:
        """Call `wake` (from a thread of its own) whenever tasks may have become ready."""
        dsn = self.pooler.listen_dsn
        if dsn is None and self.pooler.transaction_pooling:
            log.info("afterwork: behind a transaction pooler with no direct URL to listen on "
                     "(afterwork_listen_url=...): polling for work every poll_seconds")
            return lambda: None
        stop = threading.Event()
        stop_listening = self._listening(stop)

        def run() -> None:
            while not stop.is_set():
                try:
                    with self._psycopg.connect(dsn or self.pooler.dsn, autocommit=True) as conn:
                        conn.execute(f"LISTEN {CHANNEL}")
                        wake()  # anything notified while we were not listening
                        while not stop.is_set():
                            for _ in conn.notifies(timeout=1.0, stop_after=1):
                                wake()
                except self._psycopg.Error:
                    stop.wait(LISTEN_RETRY_SECONDS)

        threading.Thread(target=run, name="afterwork-listen", daemon=True).start()
        return stop_listening


def _ms(seconds: float) -> str:
    """A PostgreSQL timeout setting: whole milliseconds, at least 1 (0 would mean none)."""
    return f"{max(1, int(seconds * 1000))}ms"
