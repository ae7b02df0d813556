"""The non-durable store (`memory://`): Starlette's semantics, for tests of the logic above."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Sequence

from .._models import (
    ACTIVE_STATES,
    ANY_TASK,
    FINAL_STATES,
    Changes,
    ClaimSpec,
    Outcome,
    RunnerInfo,
    TaskRecord,
    TaskState,
)
from ._base import Store
from ._statements import CANCELLED_BY_OPERATOR, chain_reason

_S = TaskState


class MemoryStore(Store):
    durable = False

    def __init__(self, url: str = "memory://") -> None:
        self.url = url
        self._rows: dict[str, TaskRecord] = {}
        self._lock = threading.Lock()
        self._runners: dict[str, RunnerInfo] = {}

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    def lease_clock(self) -> float:
        return time.monotonic()  # one process: its own monotonic clock is the store's

    def apply(self, changes: Changes, timeout_seconds: float | None = None) -> None:
        with self._lock:
            rows = dict(self._rows)  # all or nothing: work on a copy, swap at the end
            self._apply(rows, changes)
            self._rows = rows

    def _apply(self, rows: dict[str, TaskRecord], c: Changes) -> None:
        def update(task_id: str, owner: str | None, states: Sequence[TaskState], **kw: object) -> bool:
            row = rows.get(task_id)
            if row is None or row.state not in states or (owner and row.lease_owner != owner):
                return False
            rows[task_id] = dataclasses.replace(row, **kw)  # type: ignore[arg-type]
            return True

        for new in c.inserts:
            if new.id in rows or self._key_taken(rows, new):
                raise ValueError(f"task id {new.id} or its key exists already")
            if new.lease_owner is not None and new.lease_until is None:
                new = dataclasses.replace(new, lease_until=self.lease_clock() + self.lease_seconds)
            rows[new.id] = new
        ticks = {r.tick_key for r in rows.values() if r.tick_key} if c.inserts_if_absent else set()
        for new in c.inserts_if_absent:
            if new.tick_key is not None and new.tick_key in ticks:
                continue  # a periodic tick another runner stored already
            if new.id not in rows and not self._key_taken(rows, new):
                rows[new.id] = new
                if new.tick_key:
                    ticks.add(new.tick_key)
        leased = (_S.LEASED, _S.RUNNING)
        def noted(o: Outcome) -> str:
            row = rows.get(o.task_id)
            return ((row.history if row else None) or "") + o.note

        for o in c.started:
            row = rows.get(o.task_id)
            attempts = row.attempts + 1 if row else 0
            update(o.task_id, o.owner, leased, state=_S.RUNNING, attempts=attempts, started_at=o.at,
                   history=noted(o))
        for o in c.succeeded:
            if update(o.task_id, o.owner, leased, state=_S.SUCCEEDED, finished_at=o.at,
                      lease_owner=None, lease_until=None, last_error=None):
                for r in [r for r in rows.values() if r.waiting_on == o.task_id]:
                    rows[r.id] = dataclasses.replace(r, waiting_on=None)
        for o in c.failed:
            if update(o.task_id, o.owner, leased, state=_S.FAILED, finished_at=o.at,
                      lease_owner=None, lease_until=None, last_error=o.error, history=noted(o)):
                self._cancel_chain(rows, o.task_id, o.at)
        for o in c.retried:
            update(o.task_id, o.owner, leased, state=_S.QUEUED, run_at=o.retry_at or o.at,
                   lease_owner=None, lease_until=None, last_error=o.error, history=noted(o))
        for o in c.released:
            update(o.task_id, o.owner, leased, state=_S.QUEUED, lease_owner=None, lease_until=None)
        for owner in c.expire_owners:
            for r in [r for r in rows.values() if r.lease_owner == owner and r.state in leased]:
                rows[r.id] = dataclasses.replace(r, lease_until=0.0)
        for o in c.requeued:
            if update(o.task_id, None, (_S.FAILED, _S.CANCELLED), state=_S.QUEUED, run_at=o.at,
                      attempts=0, finished_at=None, lease_owner=None, lease_until=None):
                self._walk_chain(rows, o.task_id, (_S.CANCELLED,), state=_S.QUEUED,
                                 finished_at=None, last_error=None)
        for o in c.cancelled:
            if update(o.task_id, None, (_S.QUEUED, _S.LEASED), state=_S.CANCELLED, finished_at=o.at,
                      last_error=CANCELLED_BY_OPERATOR, lease_owner=None, lease_until=None):
                self._walk_chain(rows, o.task_id, (_S.QUEUED, _S.LEASED), state=_S.CANCELLED,
                                 finished_at=o.at, lease_owner=None, lease_until=None,
                                 last_error=chain_reason(o.task_id, "was cancelled"))
        if c.heartbeat is not None:
            beat = c.heartbeat
            for r in [r for r in rows.values() if r.lease_owner == beat.owner and r.state in leased]:
                rows[r.id] = dataclasses.replace(
                    r, lease_until=self.lease_clock() + self.lease_seconds)
            known = self._runners.get(beat.owner)
            self._runners[beat.owner] = RunnerInfo(
                beat.owner, beat.kind, known.started_at if known else beat.at, beat.at)
        for owner in c.stopped_runners:
            self._runners.pop(owner, None)

    @staticmethod
    def _key_taken(rows: dict[str, TaskRecord], new: TaskRecord) -> bool:
        return new.dedup_key is not None and any(
            r.dedup_key == new.dedup_key and r.state in ACTIVE_STATES for r in rows.values())

    @classmethod
    def _cancel_chain(cls, rows: dict[str, TaskRecord], failed_id: str, at: float) -> None:
        reason = chain_reason(failed_id)
        cls._walk_chain(rows, failed_id, (_S.QUEUED, _S.LEASED), state=_S.CANCELLED,
                        finished_at=at, last_error=reason, lease_owner=None, lease_until=None)

    @staticmethod
    def _walk_chain(rows: dict[str, TaskRecord], head: str, states: Sequence[TaskState],
                    **change: object) -> None:
        current = head
        while True:
            nxt = next((r for r in rows.values() if r.waiting_on == current), None)
            if nxt is None:
                return
            if nxt.state in states:
                rows[nxt.id] = dataclasses.replace(nxt, **change)  # type: ignore[arg-type]
            current = nxt.id

    def claim(self, owner: str, limit: int, now: float,
              spec: ClaimSpec = ANY_TASK) -> list[TaskRecord]:
        with self._lock:
            clock = self.lease_clock()
            lease_until = clock + self.lease_seconds
            ready = [
                r for r in self._rows.values()
                if r.waiting_on is None and (spec.queues is None or r.queue in spec.queues) and (
                    (r.state is _S.QUEUED and r.run_at <= now)
                    or (r.state in (_S.LEASED, _S.RUNNING) and (r.lease_until or 0.0) < clock
                        and r.lease_owner != owner)
                )
            ]
            ready.sort(key=lambda r: (-r.priority, r.run_at))
            room = self._room(spec, now, clock)
            out: list[TaskRecord] = []
            for r in ready:
                if len(out) == limit:
                    break
                bucket = (r.name if r.name in spec.rate_limits
                          else r.queue if r.queue in spec.queue_limits else None)
                if bucket is not None:
                    if room[bucket] <= 0:
                        continue
                    room[bucket] -= 1
                new = dataclasses.replace(r, state=_S.LEASED, lease_owner=owner, lease_until=lease_until)
                self._rows[r.id] = new
                out.append(new)
            return out

    def _room(self, spec: ClaimSpec, now: float, clock: float) -> dict[str, int]:
        """What each limited queue and rate-limited name may still start (as the SQL stores)."""
        rows = self._rows.values()
        room = {}
        for queue, most in spec.queue_limits.items():
            active = sum(1 for r in rows if r.queue == queue and r.state in (_S.LEASED, _S.RUNNING)
                         and (r.lease_until or 0.0) >= clock)
            room[queue] = most - active
        for name, (count, per) in spec.rate_limits.items():
            recent = sum(1 for r in rows if r.rate_key == name and (
                (r.started_at or 0.0) >= now - per
                or (r.state is _S.LEASED and (r.lease_until or 0.0) >= clock)))
            room[name] = count - recent
        return room

    def get(self, task_id: str) -> TaskRecord | None:
        return self._rows.get(task_id)

    def ids_starting_with(self, prefix: str, limit: int) -> list[str]:
        return sorted(i for i in list(self._rows) if i.startswith(prefix))[:limit]

    def active_with_key(self, key: str) -> TaskRecord | None:
        return next((r for r in list(self._rows.values())
                     if r.dedup_key == key and r.state in ACTIVE_STATES), None)

    def query(
        self, *, states: Sequence[TaskState] = (), name: str | None = None, limit: int = 100,
        since: float | None = None, until: float | None = None,
        before: tuple[float, str] | None = None,
    ) -> list[TaskRecord]:
        rows = [
            r for r in list(self._rows.values())
            if (not states or r.state in states) and (name is None or r.name == name)
            and (since is None or r.created_at >= since) and (until is None or r.created_at < until)
            and (before is None or (r.created_at, r.id) < before)
        ]
        rows.sort(key=lambda r: (r.created_at, r.id), reverse=True)
        return rows[:limit]

    def counts(self) -> dict[tuple[str, str], int]:
        found: dict[tuple[str, str], int] = {}
        for r in list(self._rows.values()):
            key = (r.state.public, r.name)
            found[key] = found.get(key, 0) + 1
        return found

    def finished_per_minute(self, since: float) -> list[tuple[int, str, int]]:
        found: dict[tuple[int, str], int] = {}
        for r in list(self._rows.values()):
            if r.state in (_S.SUCCEEDED, _S.FAILED) and (r.finished_at or 0.0) >= since:
                key = (int((r.finished_at or 0.0) // 60) * 60, r.state.value)
                found[key] = found.get(key, 0) + 1
        return [(m, st, n) for (m, st), n in sorted(found.items())]

    def count_pending(self, now: float) -> int:
        return sum(
            1 for r in self._rows.values()
            if r.state in ACTIVE_STATES and not (r.state is _S.QUEUED and r.run_at > now)
        )

    def runners(self) -> list[RunnerInfo]:
        return sorted(self._runners.values(), key=lambda r: r.started_at)

    def _purgeable(self, finished_before: float) -> list[str]:
        referenced = {r.waiting_on for r in self._rows.values()}
        return [r.id for r in self._rows.values()
                if r.state in FINAL_STATES and (r.finished_at or 0.0) < finished_before
                and r.id not in referenced]

    def purge(self, finished_before: float, limit: int = 10_000) -> int:
        with self._lock:
            old = self._purgeable(finished_before)[:limit]
            for task_id in old:
                del self._rows[task_id]
            return len(old)

    def count_purgeable(self, finished_before: float) -> int:
        return len(self._purgeable(finished_before))

    def schema_version(self) -> tuple[int, int]:
        return (0, 0)

    def lease_owners(self) -> list[str]:
        leased = (_S.LEASED, _S.RUNNING)
        return sorted({r.lease_owner for r in self._rows.values()
                       if r.lease_owner and r.state in leased})
