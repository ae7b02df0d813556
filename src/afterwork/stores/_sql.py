"""The one SQL store: writes, claims and reads over DB-API 2, the same for every dialect."""

from __future__ import annotations

import abc
import json
import threading
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from .._models import (
    Changes,
    Outcome,
    QueueFigures,
    RunnerInfo,
    StepRecord,
    TaskRecord,
    TaskState,
)
from ._base import Store
from ._claims import Claims
from ._cleanup import Cleanup
from ._dbapi import Cursor
from ._migrations import SchemaMigrations
from ._rows import from_row, to_row
from ._statements import (
    ALIAS_IF_SKIPPED,
    CANCEL,
    CANCEL_AFTER,
    CANCEL_CHAIN,
    CANCELLED_BY_OPERATOR,
    COUNT_PENDING,
    EXPIRE,
    FINISHED_TIMES,
    GET,
    GET_BY_ALIAS,
    HEARTBEAT,
    INSERT,
    INSERT_IF_ABSENT,
    INSERT_LEASED,
    LEASE_NOW,
    MARK_FAILED_SQL,
    MARK_RELEASED_SQL,
    MARK_RETRIED_SQL,
    MARK_STARTED_AND_SUCCEEDED_SQL,
    MARK_STARTED_SQL,
    MARK_SUCCEEDED_SQL,
    OWNERS,
    PAUSE_QUEUE,
    PAUSED_QUEUES,
    QUEUE_FINISHED,
    QUEUE_NOW,
    READ_FROM,
    READ_LIST,
    REQUEUE,
    REQUEUE_CHAIN,
    RESUME_QUEUE,
    RUNNER_GONE,
    RUNNER_SEEN,
    RUNNERS,
    SAVE_PROGRESS,
    SAVE_RESULT,
    TASKS_TABLE,
    UNBLOCK,
    WITH_KEY,
    chain_reason,
)
from ._steps import FORGET_UNFINISHED, STEPS_OF, save_steps, step_from_row

GET_MANY_CHUNK = 500  # ids per statement: under SQLite's 999 bound parameters of old builds


def _close_readers_in(readers: dict[int, tuple[Any, int]]) -> None:
    while readers:
        _, (conn, _) = readers.popitem()
        conn.close()


class SqlStore(SchemaMigrations, Cleanup, Claims, Store):
    """A store over DB-API connections. Its subclass, one per dialect, supplies connections,
    transactions, error translation and the few expressions that differ (below); the
    statements, the state machine and the migration runner are here, once."""

    lease_now_sql: str
    """The dialect's expression for now on the lease clock (`LEASE_NOW` in the statements)."""
    param_mark = "?"
    """The driver's parameter mark (the statements are written with `?`)."""
    minute_of_finish = "CAST(finished_at / 60 AS INTEGER)"  # SQLite truncates: the floor
    TRANSLATED_MOST = 1000  # statements are few; filters vary a little

    def __init__(self, url: str) -> None:
        self.url = url
        self._readers: dict[int, tuple[Any, int]] = {}  # per thread; all closed by close()
        # A read after close() (a test reading what the app left, say) opens a reader again:
        # it closes with the store object, never left to the collector open.
        weakref.finalize(self, _close_readers_in, self._readers)
        self._write_conn: Any = None  # the writing connection, guarded by _write_lock
        self._write_lock = threading.Lock()
        self._translated: dict[str, str] = {}
        self._listeners: list[threading.Event] = []  # set by close(): each `listen` stops

    @abc.abstractmethod
    def _connect(self) -> Any: ...

    _generation = 0  # bumped when the store's file was replaced: readers reconnect

    def _reader(self) -> Any:
        readers = self._readers
        found = readers.get(threading.get_ident())
        if found is None or found[1] != self._generation:
            if found is not None:
                found[0].close()
            found = readers[threading.get_ident()] = (self._connect(), self._generation)
        return found[0]

    def _drop_reader(self) -> None:
        found = self._readers.pop(threading.get_ident(), None)
        if found is not None:
            found[0].close()

    def _close_readers(self) -> None:
        _close_readers_in(self._readers)

    @abc.abstractmethod
    @contextmanager
    def _write(self, timeout_seconds: float | None = None) -> Iterator[Cursor]:
        """A cursor inside one write transaction; commits on exit, rolls back on error, and
        translates driver errors into afterwork's. Waits for locks at most `timeout_seconds`
        (None: the store's `timeout_seconds`)."""

    @abc.abstractmethod
    @contextmanager
    def _read(self) -> Iterator[Cursor]: ...

    def _sql(self, statement: str) -> str:
        """The statement in this dialect: its parameter marks and its lease clock."""
        found = self._translated.get(statement)
        if found is None:
            found = statement.replace(LEASE_NOW, self.lease_now_sql)
            if self.param_mark != "?":
                found = found.replace("?", self.param_mark)
            if len(self._translated) < self.TRANSLATED_MOST:
                self._translated[statement] = found
        return found

    def _listening(self, stop: threading.Event) -> Callable[[], None]:
        """Keep a new listener's stop, for `close` (dropping those stopped already: a runner
        replaced after its loop ended stops its own); returns what stops it."""
        self._listeners = [s for s in self._listeners if not s.is_set()] + [stop]
        return stop.set

    def close(self) -> None:
        for stop in self._listeners:
            stop.set()
        with self._write_lock:
            if self._write_conn is not None:
                self._write_conn.close()
                self._write_conn = None
        self._close_readers()

    def apply(self, changes: Changes, timeout_seconds: float | None = None) -> None:
        with self._write(timeout_seconds) as cur:
            if self._apply_in(cur, changes):
                self._notify(cur)

    def _notify(self, cur: Cursor) -> None:
        """Tell other runners that tasks became ready (inside the transaction)."""

    def _apply_in(self, cur: Cursor, changes: Changes) -> bool:
        """Apply in the open transaction; True when tasks became ready for other runners."""
        q = self._sql
        ready = any(r.lease_owner is None for r in changes.inserts) or bool(
            changes.retried or changes.released or changes.expire_owners
        )
        if changes.inserts:
            # A row handed to this process's runner comes with no lease time: it starts now,
            # on the store's clock. Rows given one (a restore, a test) keep it.
            leased = [r for r in changes.inserts if r.lease_owner is not None and r.lease_until is None]
            if leased:
                statement, lease = self._leased_insert()
                self._insert(cur, statement, [to_row(r, lease) for r in leased])
                if len(leased) < len(changes.inserts):
                    self._insert(cur, INSERT, [to_row(r) for r in changes.inserts
                                               if r.lease_owner is None or r.lease_until is not None])
            else:
                self._insert(cur, INSERT, [to_row(r) for r in changes.inserts])
        if changes.inserts_if_absent:
            self._insert(cur, INSERT_IF_ABSENT, [to_row(r) for r in changes.inserts_if_absent])
            keyed = [(r.id, r.dedup_key, r.id) for r in changes.inserts_if_absent if r.dedup_key]
            if keyed:
                cur.executemany(q(ALIAS_IF_SKIPPED), keyed)
            ready = True
        if changes.steps:  # before the outcomes: a success or a retry ends the lease they need
            save_steps(cur, q, changes.steps)
        if changes.progress:  # before the outcomes: a report rides with its task's last one
            cur.executemany(q(SAVE_PROGRESS), [(p.task_id, p.progress, p.task_id, p.owner)
                                               for p in changes.progress])
        started = {o.task_id: o for o in changes.started}
        at_once: list[Outcome] = []
        later: list[Outcome] = []
        for o in changes.succeeded:  # one pass: comparing outcomes pairwise was quadratic
            (at_once if o.task_id in started else later).append(o)
        if at_once:
            self._mark_started_and_succeeded(cur, [
                (started[o.task_id].at, o.at, started.pop(o.task_id).note, o.task_id, o.owner)
                for o in at_once])
        if started:
            cur.executemany(q(MARK_STARTED_SQL), [(o.at, o.note, o.task_id, o.owner)
                                                  for o in started.values()])
        if later:
            cur.executemany(q(MARK_SUCCEEDED_SQL), [(o.at, o.task_id, o.owner) for o in later])
        results = [(o.task_id, o.result, o.task_id, o.at) for o in changes.succeeded
                   if o.result is not None]
        if results:
            cur.executemany(q(SAVE_RESULT), results)
        unblock = [o.task_id for o in changes.succeeded if o.unblock]
        if unblock:
            ready = self._unblock(cur, unblock) or ready
        for o in changes.failed:
            cur.execute(q(MARK_FAILED_SQL), (o.at, o.error, o.note, o.task_id, o.owner))
            cur.execute(q(CANCEL_CHAIN), (o.task_id, o.at, chain_reason(o.task_id), o.task_id))
        if changes.retried:
            cur.executemany(q(MARK_RETRIED_SQL), [
                (o.retry_at or o.at, o.error, o.note, o.task_id, o.owner) for o in changes.retried])
        if changes.released:
            cur.executemany(q(MARK_RELEASED_SQL), [(o.task_id, o.owner) for o in changes.released])
        for owner in changes.expire_owners:
            cur.execute(q(EXPIRE), (owner,))
        for o in changes.requeued:
            cur.execute(q(REQUEUE), (o.at, o.task_id))
            cur.execute(q(REQUEUE_CHAIN), (o.task_id,))
            cur.execute(q(FORGET_UNFINISHED), (o.task_id,))
        for o in changes.cancelled:
            cur.execute(q(CANCEL), (o.at, CANCELLED_BY_OPERATOR, o.task_id))
            cur.execute(q(CANCEL_AFTER), (o.task_id, o.at, chain_reason(o.task_id, "was cancelled"),
                                          o.task_id))
        if changes.heartbeat is not None:
            beat = changes.heartbeat
            cur.execute(q(HEARTBEAT), (self.lease_seconds, beat.owner))
            queues = None if beat.queues is None else json.dumps(list(beat.queues))
            cur.execute(q(RUNNER_SEEN), (beat.owner, beat.kind, beat.at, beat.at, beat.host,
                                         beat.pid, queues, beat.concurrency))
        for owner in changes.stopped_runners:
            cur.execute(q(RUNNER_GONE), (owner,))
        return ready or bool(changes.requeued)

    def _leased_insert(self) -> tuple[str, float]:
        """(the INSERT of rows leased as they are written, the value their lease_until gets):
        here the lease's length, added to the store's clock by the statement."""
        return INSERT_LEASED, self.lease_seconds

    def _insert(self, cur: Cursor, statement: str, rows: list[tuple[Any, ...]]) -> None:
        """Run an INSERT of COLUMNS (one `?` per column, in order) for each row."""
        cur.executemany(self._sql(statement), rows)

    def _mark_started_and_succeeded(self, cur: Cursor, rows: list[tuple[float, float, str, str, str]]
                                    ) -> None:
        """(started at, finished at, history note, task id, owner) of tasks that started and
        succeeded within one group of writes."""
        cur.executemany(self._sql(MARK_STARTED_AND_SUCCEEDED_SQL), rows)

    def _unblock(self, cur: Cursor, task_ids: list[str]) -> bool:
        """The next task of each succeeded task's chain may run; True if any was waiting."""
        cur.executemany(self._sql(UNBLOCK), [(i, i) for i in task_ids])
        return bool(cur.rowcount > 0)

    def lease_clock(self) -> float:
        with self._read() as cur:
            cur.execute(self._sql(f"SELECT {LEASE_NOW}"))
            return float(cur.fetchone()[0])

    def get(self, task_id: str) -> TaskRecord | None:
        with self._read() as cur:
            cur.execute(self._sql(GET), (task_id,))
            row = cur.fetchone()
            if row is None:  # the id of a keyed task skipped for a live duplicate: that task
                cur.execute(self._sql(GET_BY_ALIAS), (task_id,))
                row = cur.fetchone()
        return from_row(row) if row else None

    def get_many(self, task_ids: Sequence[str]) -> dict[str, TaskRecord]:
        found: dict[str, TaskRecord] = {}
        ids = list(dict.fromkeys(task_ids))
        for start in range(0, len(ids), GET_MANY_CHUNK):
            chunk = ids[start:start + GET_MANY_CHUNK]
            sql = f"SELECT {READ_LIST} FROM {READ_FROM} WHERE id IN ({', '.join('?' for _ in chunk)})"
            with self._read() as cur:
                cur.execute(self._sql(sql), chunk)
                found.update((r.id, r) for r in map(from_row, cur.fetchall()))
        return found

    def ids_starting_with(self, prefix: str, limit: int) -> list[str]:
        # substr, not LIKE: exact and case-sensitive in both dialects, no escaping of % and _
        sql = f"SELECT id FROM {TASKS_TABLE} WHERE substr(id, 1, ?) = ? ORDER BY id LIMIT ?"
        with self._read() as cur:
            cur.execute(self._sql(sql), (len(prefix), prefix, limit))
            return [r[0] for r in cur.fetchall()]

    def active_with_key(self, key: str) -> TaskRecord | None:
        with self._read() as cur:
            cur.execute(self._sql(WITH_KEY), (key,))
            row = cur.fetchone()
        return from_row(row) if row else None

    def query(
        self, *, states: Sequence[TaskState] = (), name: str | None = None, queue: str | None = None,
        limit: int = 100,
        since: float | None = None, until: float | None = None,
        before: tuple[float, str] | None = None, payload_has: str | None = None,
    ) -> list[TaskRecord]:
        where: list[str] = []
        params: list[Any] = []
        if states:
            where.append(f"state IN ({', '.join('?' for _ in states)})")
            params.extend(s.value for s in states)
        if payload_has is not None:  # LIKE, escaped: the same in both dialects
            where.append("payload LIKE ? ESCAPE '!'")
            params.append("%" + payload_has.replace("!", "!!").replace("%", "!%").replace("_", "!_") + "%")
        for column, value in (("name", name), ("queue", queue)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if since is not None:
            where.append("created_at >= ?")
            params.append(since)
        if until is not None:
            where.append("created_at < ?")
            params.append(until)
        if before is not None:  # the cursor: strictly after (created_at, id) in this order
            where.append("(created_at < ? OR (created_at = ? AND id < ?))")
            params.extend((before[0], before[0], before[1]))
        clause = f"WHERE {' AND '.join(where)} " if where else ""
        sql = f"SELECT {READ_LIST} FROM {READ_FROM} {clause}ORDER BY created_at DESC, id DESC LIMIT ?"
        with self._read() as cur:
            cur.execute(self._sql(sql), (*params, limit))
            return [from_row(r) for r in cur.fetchall()]

    def counts(self) -> dict[tuple[str, str], int]:
        with self._read() as cur:
            cur.execute(f"SELECT state, name, COUNT(*) FROM {TASKS_TABLE} GROUP BY state, name")
            rows = cur.fetchall()
        found: dict[tuple[str, str], int] = {}
        for state, name, n in rows:  # leased and queued are both `queued` to the public
            key = (TaskState(state).public, name)
            found[key] = found.get(key, 0) + int(n)
        return found

    def _finished_per_minute(self, since: float, by: str) -> list[Any]:
        """Rows of (*by, minute, state, count); `by`: columns to group by first, with a comma."""
        sql = (f"SELECT {by}{self.minute_of_finish} AS minute, state, COUNT(*) FROM {TASKS_TABLE} "
               "WHERE finished_at >= ? AND state IN ('succeeded', 'failed') "
               f"GROUP BY {by}minute, state ORDER BY minute")
        with self._read() as cur:
            cur.execute(self._sql(sql), (since,))
            return list(cur.fetchall())

    def finished_per_minute(self, since: float) -> list[tuple[int, str, int]]:
        return [(int(m) * 60, st, int(n)) for m, st, n in self._finished_per_minute(since, "")]

    def finished_per_minute_by_queue(self, since: float) -> list[tuple[str, int, str, int]]:
        return [(q, int(m) * 60, st, int(n))
                for q, m, st, n in self._finished_per_minute(since, "queue, ")]

    def count_pending(self, now: float) -> int:
        with self._read() as cur:
            cur.execute(self._sql(COUNT_PENDING), (now,))
            return int(cur.fetchone()[0])

    def runners(self) -> list[RunnerInfo]:
        with self._read() as cur:
            cur.execute(self._sql(RUNNERS))
            return [RunnerInfo(owner, kind, started, beat, host, pid,
                               None if queues is None else tuple(json.loads(queues)),
                               concurrency, running)
                    for owner, kind, started, beat, host, pid, queues, concurrency, running
                    in cur.fetchall()]

    def paused_queues(self) -> dict[str, float]:
        with self._read() as cur:
            cur.execute(self._sql(PAUSED_QUEUES))
            return {queue: float(at) for queue, at in cur.fetchall()}

    def set_queue_paused(self, queue: str, paused: bool, at: float) -> None:
        with self._write() as cur:
            if paused:
                cur.execute(self._sql(PAUSE_QUEUE), (queue, at))
            else:
                cur.execute(self._sql(RESUME_QUEUE), (queue,))
                self._notify(cur)  # its tasks are ready for every runner again

    def queue_figures(self, now: float, since: float) -> list[QueueFigures]:
        found: dict[str, QueueFigures] = {}
        with self._read() as cur:
            cur.execute(self._sql(QUEUE_NOW), (now,))
            for queue, waiting, oldest, running in cur.fetchall():
                found[queue] = QueueFigures(queue, int(waiting or 0), oldest, int(running or 0))
            cur.execute(self._sql(QUEUE_FINISHED), (since,))
            for queue, succeeded, failed in cur.fetchall():
                figures = found.setdefault(queue, QueueFigures(queue))
                figures.succeeded, figures.failed = int(succeeded or 0), int(failed or 0)
        return sorted(found.values(), key=lambda f: f.queue)

    def finished_times(self, since: float, limit: int) -> list[tuple[str, str, float, float | None, float]]:
        with self._read() as cur:
            cur.execute(self._sql(FINISHED_TIMES), (since, limit))
            return [tuple(row) for row in cur.fetchall()]

    def steps_of(self, task_id: str) -> list[StepRecord]:
        with self._read() as cur:
            cur.execute(self._sql(STEPS_OF), (task_id,))
            return [step_from_row(r) for r in cur.fetchall()]

    def schema_version(self) -> tuple[int, int]:
        with self._read() as cur:
            cur.execute("SELECT MAX(version) FROM afterwork_migrations")
            applied = cur.fetchone()[0] or 0
        return int(applied), max(v for v, _ in self.migrations())

    def lease_owners(self) -> list[str]:
        with self._read() as cur:
            cur.execute(self._sql(OWNERS))
            return sorted(r[0] for r in cur.fetchall())
