"""Deleting tasks from a SQL store: `purge` by age (Afterwork's `keep_seconds`, `afterwork
purge`) and `delete` by id (the dashboard's operator), each with the rows that belong to the
deleted tasks (aliases, results and progress, steps); and forgetting old results."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

from ._dbapi import Cursor
from ._statements import (
    COUNT_PURGEABLE,
    DELETE_TASK,
    FORGET_RESULTS,
    PURGE,
    PURGE_ALIASES,
    PURGE_OUTPUTS,
)
from ._steps import PURGE_STEPS


class Cleanup:
    """`SqlStore`'s deletes (its `_write`, `_read` and `_sql` below)."""

    if TYPE_CHECKING:
        def _write(self, timeout_seconds: float | None = None) -> AbstractContextManager[Cursor]: ...
        def _read(self) -> AbstractContextManager[Cursor]: ...
        def _sql(self, statement: str) -> str: ...

    def _drop_orphans(self, cur: Cursor) -> None:
        """The rows of tasks deleted in this transaction."""
        for statement in (PURGE_ALIASES, PURGE_OUTPUTS, PURGE_STEPS):
            cur.execute(self._sql(statement))

    def purge(self, finished_before: float, limit: int = 10_000) -> int:
        with self._write() as cur:
            cur.execute(self._sql(PURGE), (finished_before, limit))
            purged = int(cur.rowcount)
            if purged:
                self._drop_orphans(cur)
            return purged

    def delete(self, task_ids: Sequence[str]) -> list[str]:
        deleted = []
        with self._write() as cur:
            for task_id in task_ids:
                cur.execute(self._sql(DELETE_TASK), (task_id,))
                if cur.rowcount > 0:
                    deleted.append(task_id)
            if deleted:
                self._drop_orphans(cur)
        return deleted

    def forget_results(self, finished_before: float) -> int:
        with self._write() as cur:
            cur.execute(self._sql(FORGET_RESULTS), (finished_before,))
            return int(cur.rowcount)

    def count_purgeable(self, finished_before: float) -> int:
        with self._read() as cur:
            cur.execute(self._sql(COUNT_PURGEABLE), (finished_before,))
            return int(cur.fetchone()[0])
