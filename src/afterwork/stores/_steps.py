"""The SQL of a task's step records (`afterwork.step`), for every dialect: written inside the
writer's grouped transactions, fenced by the task's lease like its outcomes, read once when a
task calls its first step, and deleted with their task."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .._models import StepRecord, StepWrite
from ._dbapi import Cursor
from ._statements import TASKS_TABLE

STEPS_TABLE = "afterwork_steps"
_STEP_COLUMNS = ("task_id, seq, name, state, once, attempt, runs, started_at, finished_at, "
                 "result, error")
# Parameters: the step's columns in that order, then the task's id and the lease owner. The
# CAST gives PostgreSQL a type for a finish time that is NULL (a start).
SAVE_STEP = (
    f"INSERT INTO {STEPS_TABLE} ({_STEP_COLUMNS}) "
    "SELECT ?, ?, ?, ?, ?, ?, ?, ?, CAST(? AS DOUBLE PRECISION), ?, ? WHERE EXISTS "
    f"(SELECT 1 FROM {TASKS_TABLE} WHERE id = ? AND lease_owner = ? "
    "AND state IN ('leased', 'running')) "
    "ON CONFLICT (task_id, seq) DO UPDATE SET name = excluded.name, state = excluded.state, "
    f"once = excluded.once, attempt = excluded.attempt, runs = {STEPS_TABLE}.runs + excluded.runs, "
    "started_at = excluded.started_at, finished_at = excluded.finished_at, "
    "result = excluded.result, error = excluded.error"
)
STEPS_OF = f"SELECT {_STEP_COLUMNS} FROM {STEPS_TABLE} WHERE task_id = ? ORDER BY seq"
PURGE_STEPS = (f"DELETE FROM {STEPS_TABLE} WHERE NOT EXISTS "
               f"(SELECT 1 FROM {TASKS_TABLE} t WHERE t.id = {STEPS_TABLE}.task_id)")
# An operator's retry is a person's decision to run the task again: steps that did not
# finish (an at-most-once step that started, one that raised) run again; finished ones replay.
FORGET_UNFINISHED = f"DELETE FROM {STEPS_TABLE} WHERE task_id = ? AND state <> 'finished'"


def save_steps(cur: Cursor, sql: Callable[[str], str], writes: Sequence[StepWrite]) -> None:
    """Write step records in the open transaction, each only while its runner holds the
    task's lease; each write learns whether it applied (one statement each, for that)."""
    statement = sql(SAVE_STEP)
    for w in writes:
        cur.execute(statement, (w.task_id, w.seq, w.name, w.state, int(w.once), w.attempt, w.runs,
                                w.started_at, w.finished_at, w.result, w.error, w.task_id, w.owner))
        w.applied = cur.rowcount > 0


def step_from_row(row: Sequence[Any]) -> StepRecord:
    task_id, seq, name, state, once, attempt, runs, started, finished, result, error = row
    return StepRecord(task_id, int(seq), name, state, bool(once), int(attempt), int(runs),
                      float(started), None if finished is None else float(finished), result, error)
