"""How far a running task has got: `afterwork.progress(done, total=None, note="")`.

    @task
    async def build_report(month: str) -> Report:
        for i, section in enumerate(SECTIONS):
            ...
            progress(i + 1, total=len(SECTIONS), note=section.title)

A report costs a tuple and a clock read: they are throttled to one store write per
PROGRESS_EVERY_SECONDS a task (the latest report wins, the others are coalesced into it), and
the last one is written with the task's outcome. Each write is posted to the writer (it rides
with the next group of writes) and emitted on the events stream (`EventKind.PROGRESS`), which
wakes the status API's watchers. A report names its attempt: after a retry, the page shows
"attempt 2, 3 of 10".
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable

from ._context import running_task
from ._errors import AfterworkError
from ._models import Changes, ProgressReport, TaskRecord

PROGRESS_EVERY_SECONDS = 0.5  # at most one write a task this often
NOTE_CHARS_MAX = 200


class ProgressSink:
    """One runner's progress writes: `post` takes the Changes (the writer's post), `emit`
    tells the events stream (kind PROGRESS) of a report written."""

    def __init__(self, owner: str, post: Callable[[Changes], None],
                 emit: Callable[[TaskRecord, int, str], None]) -> None:
        self.owner = owner
        self._post = post
        self._emit = emit
        self._throttles: dict[str, _Throttle] = {}  # task id -> its throttle

    def report(self, record: TaskRecord, attempt: int, done: float, total: float | None,
               note: str, from_step: bool = False) -> None:
        now = time.monotonic()
        throttle = self._throttles.get(record.id)
        if throttle is None:
            throttle = self._throttles[record.id] = _Throttle()
        if from_step and throttle.own_reports:
            return  # the task reports its own progress: a step's end does not override it
        throttle.own_reports = throttle.own_reports or not from_step
        if now < throttle.next_write:  # coalesced: the next write (or the outcome) carries it
            throttle.unwritten = (done, total, note, attempt)
            return
        throttle.next_write, throttle.unwritten = now + PROGRESS_EVERY_SECONDS, None
        text = _progress_json(done, total, note, attempt)
        try:
            self._post(Changes(progress=[ProgressReport(record.id, self.owner, text)]))
        except AfterworkError:
            return  # the writer stopped: the task goes on, its progress is not shown
        self._emit(record, attempt, text)

    def finish(self, task_id: str) -> ProgressReport | None:
        """The task ended: its unwritten last report, to write with its outcome."""
        throttle = self._throttles.pop(task_id, None)
        if throttle is None or throttle.unwritten is None:
            return None
        return ProgressReport(task_id, self.owner, _progress_json(*throttle.unwritten))

    def __bool__(self) -> bool:
        return bool(self._throttles)


class _Throttle:
    __slots__ = ("next_write", "own_reports", "unwritten")

    def __init__(self) -> None:
        self.next_write = 0.0  # monotonic
        self.own_reports = False  # the task called progress() itself
        self.unwritten: tuple[float, float | None, str, int] | None = None


def _progress_json(done: float, total: float | None, note: str, attempt: int) -> str:
    return json.dumps({"done": done, "total": total, "note": note[:NOTE_CHARS_MAX],
                       "attempt": attempt, "at": time.time()}, separators=(",", ":"))


def progress(done: float, total: float | None = None, note: str = "") -> None:
    """Report how far the running task has got: `done` of `total` (None: unknown), with a
    short `note` (what it does now). Call it as often as you like: writes are throttled.
    Outside a task it does nothing (a function run directly, in a test, say)."""
    if not _finite(done) or (total is not None and not _finite(total)):
        raise ValueError(f"progress({done!r}, total={total!r}): give finite numbers")
    found = running_task.get()
    if found is not None:
        found.sink.report(found.record, found.attempt, done, total, str(note))


def progress_of_steps(done: int, name: str) -> None:
    """A step's end, as the task's progress ("3 steps done, the last: charge"), unless the
    task reports progress itself."""
    found = running_task.get()
    if found is not None:
        found.sink.report(found.record, found.attempt, done, None, f"step {name!r} done",
                          from_step=True)


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
