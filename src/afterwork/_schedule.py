"""Periodic tasks, declared in code. Every runner schedules them; each tick is stored with a
unique key made of the task and the tick time (its id is random, like any task's), inserted
only if absent, so it runs once however many processes run.

Missed ticks (everything was down): only the latest one runs, once, when a runner comes back
(`missed="latest"`, the default), provided the schedule ran before (a new schedule does not
run its latest past tick on its first deployment); `missed="skip"` drops every tick older than
the scheduler's start.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, ParamSpec, TypeVar

from ._errors import ConfigurationError, TaskNotFoundError
from ._handle import TaskHandle
from ._models import TaskRecord, iso
from ._registry import Task, task

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(slots=True)
class Schedule:
    task: Task[..., Any]
    cron: str | None = None
    every_seconds: float | None = None
    missed: Literal["latest", "skip"] = "latest"
    kwargs: dict[str, Any] = field(default_factory=dict)

    def latest_tick(self, now: float) -> float:
        """The most recent tick at or before `now` (Unix time)."""
        if self.every_seconds is not None:
            return math.floor(now / self.every_seconds) * self.every_seconds
        from cronsim import CronSim

        assert self.cron is not None
        start = dt.datetime.fromtimestamp(now, dt.timezone.utc)
        return next(CronSim(self.cron, start, reverse=True)).timestamp()

    def next_tick(self, now: float) -> float:
        """The first tick after `now` (Unix time)."""
        if self.every_seconds is not None:
            return (math.floor(now / self.every_seconds) + 1) * self.every_seconds
        from cronsim import CronSim

        assert self.cron is not None
        return next(CronSim(self.cron, dt.datetime.fromtimestamp(now, dt.timezone.utc))).timestamp()

    def tick_key(self, tick: float) -> str:
        """The unique key of one tick (the task's id is random: nobody computes it)."""
        return f"{self.task.name}@{tick:.3f}"


SCHEDULES: list[Schedule] = []


def periodic(
    *, cron: str | None = None, every: float | None = None,
    missed: Literal["latest", "skip"] = "latest", name: str | None = None,
    kwargs: dict[str, Any] | None = None, **options: Any,
) -> Callable[[Callable[P, R]], Task[P, R]]:
    """Run a module-level function on a schedule: a cron expression (UTC) or every N seconds.

        @periodic(cron="0 3 * * *")          # every night at 03:00 UTC
        async def nightly_report() -> None: ...

        @periodic(every=60, queue="maintenance")
        def sweep() -> None: ...
    """
    if (cron is None) == (every is None):
        raise ConfigurationError("periodic() takes exactly one of cron='...' or every=seconds")
    if every is not None and every <= 0:
        raise ConfigurationError(f"periodic(every={every!r}): it must be above 0 seconds")
    if cron is not None:
        try:
            from cronsim import CronSim

            CronSim(cron, dt.datetime.now(dt.timezone.utc))
        except Exception as exc:
            raise ConfigurationError(f"periodic(cron={cron!r}) is not a cron expression: {exc}") from exc

    def decorate(func: Callable[P, R]) -> Task[P, R]:
        registered = task(name=name, **options)(func)
        SCHEDULES.append(Schedule(registered, cron, every, missed, dict(kwargs or {})))
        return registered

    return decorate


def schedules_view(newest_of: Callable[[str], TaskRecord | None], now: float) -> list[dict[str, Any]]:
    """Each schedule as the dashboard shows it: its timing, next tick, and its newest task (the
    last run, or the one "run now" added) with that task's state. `newest_of(name)` reads the
    store (blocks)."""
    shown = []
    for schedule in list(SCHEDULES):
        last = newest_of(schedule.task.name)
        shown.append({
            "name": schedule.task.name,
            "cron": schedule.cron,
            "every_seconds": schedule.every_seconds,
            "next_at": iso(schedule.next_tick(now)),
            "last_id": last.id if last else None,
            "last_at": iso(last.created_at) if last else None,
            "last_state": last.state.public if last else None,
        })
    return shown


def run_now(name: str, enqueue: Callable[[Callable[..., Any], dict[str, Any]], TaskHandle]) -> TaskHandle:
    """Add one run of the schedule named `name` now, outside its ticks (an operator's "run
    now"): an ordinary task of its function with its fixed keyword arguments."""
    for schedule in list(SCHEDULES):
        if schedule.task.name == name:
            return enqueue(schedule.task, dict(schedule.kwargs))
    raise TaskNotFoundError(f"no periodic schedule named {name[:200]!r} in this app")


class Scheduler:
    """Inserts each schedule's due tick once (by its unique tick key); runs inside every runner."""

    def __init__(self) -> None:
        self.started = time.time()
        self._done: dict[str, float] = {}
        self.ran_before: dict[str, bool] = {}  # task name -> any task of it in the store?

    def unknown(self) -> list[str]:
        """Schedules whose history the runner must look up before `due` can decide."""
        return [s.task.name for s in SCHEDULES if s.task.name not in self.ran_before]

    def due(self, now: float) -> list[tuple[Schedule, float]]:
        found = []
        for schedule in list(SCHEDULES):
            name = schedule.task.name
            tick = schedule.latest_tick(now)
            if self._done.get(name, -1.0) >= tick:
                continue
            self._done[name] = tick
            catch_up = schedule.missed == "latest" and self.ran_before.get(name, True)
            if tick < self.started and not catch_up:
                continue
            found.append((schedule, tick))
        return found
