"""Claiming ready tasks from a SQL store: one pass for unlimited work, then one per limited
queue (up to its room) and per rate-limited task name (up to its allowance); each pass picks
from the two small ready indexes (queued and due, leases expired) and merges, never from the
finished rows. Paused queues are skipped by every pass. A dialect may serialize the limited
passes (`_serialize_limited_claims`) and write a pass its own way (`_claim_pass`)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from .._models import ANY_TASK, ClaimSpec, TaskRecord
from ._dbapi import Cursor
from ._rows import from_row
from ._statements import (
    ACTIVE_IN_QUEUE,
    COLUMN_LIST,
    LEASE_NOW,
    NOT_PAUSED,
    READY_EXPIRED,
    READY_ORDER,
    READY_QUEUED,
    RECENT_STARTS,
    TASKS_TABLE,
)


def _filter(queues: Sequence[str] | None, *, exclude_queues: Sequence[str] = (),
            names: Sequence[str] | None = None, exclude_names: Sequence[str] = ()
            ) -> tuple[str, list[Any]]:
    """Extra WHERE terms; None means no restriction, an empty list matches nothing."""
    parts: list[str] = []
    params: list[Any] = []
    for column, values, negate in (("queue", queues, False), ("queue", exclude_queues, True),
                                   ("name", names, False), ("name", exclude_names, True)):
        if values is None or (negate and not values):
            continue
        marks = ", ".join("?" for _ in values) or "NULL"
        parts.append(f" AND {column} {'NOT IN' if negate else 'IN'} ({marks})")
        params.extend(values)
    return "".join(parts), params



class Claims:
    """`SqlStore`'s claims (its `_write`, `_sql` and `lease_seconds` below)."""

    if TYPE_CHECKING:
        lease_seconds: float

        def _write(self, timeout_seconds: float | None = None) -> AbstractContextManager[Cursor]: ...
        def _sql(self, statement: str) -> str: ...

    def claim(self, owner: str, limit: int, now: float,
              spec: ClaimSpec = ANY_TASK) -> list[TaskRecord]:
        claimed: list[TaskRecord] = []
        with self._write() as cur:
            for sql_filter, params, allowance in self._claim_passes(cur, spec, now):
                room = min(allowance, limit - len(claimed))
                if room > 0:
                    claimed.extend(self._claim_pass(cur, owner, now, room, sql_filter + NOT_PAUSED,
                                                    params))
        return sorted(claimed, key=lambda r: (-r.priority, r.run_at))

    def _claim_passes(self, cur: Cursor, spec: ClaimSpec, now: float
                      ) -> Iterator[tuple[str, list[Any], int]]:
        """(filter, params, most to take): unlimited work first, then each limited queue up to
        its room, then each rate-limited task name up to its allowance."""
        q = self._sql
        if spec.queue_limits or spec.rate_limits:
            self._serialize_limited_claims(cur, spec)
        limited_queues = [n for n in spec.queue_limits if spec.queues is None or n in spec.queues]
        rated = list(spec.rate_limits)
        base, params = _filter(spec.queues, exclude_queues=limited_queues, exclude_names=rated)
        yield base, params, 1 << 30
        for queue in limited_queues:
            cur.execute(q(ACTIVE_IN_QUEUE), (queue,))
            room = spec.queue_limits[queue] - int(cur.fetchone()[0])
            sql, params = _filter((queue,), exclude_names=rated)
            yield sql, params, room
        for name, (count, per) in spec.rate_limits.items():
            cur.execute(q(RECENT_STARTS), (name, now - per))
            room = count - int(cur.fetchone()[0])
            sql, params = _filter(spec.queues, names=(name,))  # its own limit, even in a limited queue
            yield sql, params, room

    def _serialize_limited_claims(self, cur: Cursor, spec: ClaimSpec) -> None:
        """Inside a claim's transaction, before it counts what runs under `spec`'s limits:
        keep other claimers from counting and claiming under the same limits meanwhile.
        Nothing to do where the write transaction already excludes every other (SQLite)."""

    def _claim_pass(self, cur: Cursor, owner: str, now: float, limit: int,
                    sql_filter: str, params: list[Any]) -> list[TaskRecord]:
        pick = f"SELECT id, priority, run_at FROM {TASKS_TABLE} WHERE"
        sql = (f"UPDATE {TASKS_TABLE} SET state = 'leased', lease_owner = ?, lease_until = {LEASE_NOW} + ? "
               f"WHERE id IN (SELECT id FROM ("
               f"SELECT * FROM ({pick} {READY_QUEUED}{sql_filter} {READY_ORDER} LIMIT ?) UNION ALL "
               f"SELECT * FROM ({pick} {READY_EXPIRED}{sql_filter} {READY_ORDER} LIMIT ?)"
               f") {READY_ORDER} LIMIT ?) RETURNING {COLUMN_LIST}")
        cur.execute(self._sql(sql), (owner, self.lease_seconds, now, *params, limit,
                                     owner, *params, limit, limit))
        return [from_row(r) for r in cur.fetchall()]
