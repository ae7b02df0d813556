"""Read a chaos log: what ran, what was lost, what ran twice, and whether any task ran
concurrently with itself."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

from ..procs import complete_lines


@dataclass
class Figures:
    accepted: int
    completed: int
    lost: int
    executions: int
    duplicates: int  # executions beyond the first completed one, per task
    in_flight_at_kills: int  # started, never ended: running when its process was killed
    duplicated: set[str]  # the tasks that ran more than once
    self_overlaps: int  # two completed executions of one task overlapping in time

    def unexplained(self, unfinished_at_kills: set[str]) -> set[str]:
        """Tasks that ran twice although the store had them finished at every kill: the
        guarantee allows duplicates only for tasks not yet recorded as finished at a crash."""
        return self.duplicated - unfinished_at_kills

    def line(self, kills: int) -> str:
        return (f"chaos: {self.accepted} tasks accepted, {kills} SIGKILLs, {self.lost} lost, "
                f"{self.duplicates} duplicate executions ({self.in_flight_at_kills} were running at "
                f"the kills), {self.self_overlaps} overlapping runs of one task")


def read(log: Path, accepted: set[str]) -> Figures:
    starts: dict[str, list[dict[str, float]]] = defaultdict(list)
    ends: dict[tuple[str, int], float] = {}
    for raw in complete_lines(log):
        e = json.loads(raw)
        if e["event"] == "step":
            continue  # see step_runs
        if e["event"] == "start":
            starts[e["id"]].append(e)
        else:
            ends[(e["id"], e["pid"])] = e["at"]
    completed = {t for t in accepted if any((t, s["pid"]) in ends for s in starts.get(t, []))}
    runs = [(t, s["at"], ends.get((t, int(s["pid"])))) for t in starts for s in starts[t]]
    finished = defaultdict(list)
    for t, start, end in runs:
        if end is not None:
            finished[t].append((start, end))
    overlaps = 0
    for spans in finished.values():
        spans.sort()
        overlaps += sum(1 for a, b in pairwise(spans) if b[0] < a[1])
    return Figures(
        accepted=len(accepted), completed=len(completed), lost=len(accepted - completed),
        executions=len(runs), duplicates=len(runs) - len(starts),
        in_flight_at_kills=sum(1 for _, _, end in runs if end is None),
        duplicated={t for t, started in starts.items() if len(started) > 1},
        self_overlaps=overlaps,
    )


@dataclass
class StepFigures:
    """How often each step of the stepped workload was called, over the tasks that ran."""

    tasks: int
    calls: dict[str, int]  # step -> calls over all tasks
    again: dict[str, set[str]]  # step -> tasks that called it more than once
    replayed: int  # task runs after the first that skipped a step an earlier run had called

    def line(self) -> str:
        per_step = ", ".join(f"{name} {n} ({n - self.tasks:+d}, {len(self.again[name])} task(s) "
                             "called it twice or more)" for name, n in self.calls.items())
        return (f"steps over {self.tasks} tasks: calls per step: {per_step}; {self.replayed} "
                "re-runs replayed a finished step instead of calling it")


def step_runs(log: Path, steps: tuple[str, ...]) -> StepFigures:
    calls: dict[str, dict[str, int]] = {name: defaultdict(int) for name in steps}
    runs: dict[str, list[tuple[int, list[str]]]] = defaultdict(list)  # task -> (pid, its steps)
    for raw in complete_lines(log):
        e = json.loads(raw)
        if e["event"] == "start":
            runs[e["id"]].append((e["pid"], []))
        elif e["event"] == "step":
            calls[e["step"]][e["id"]] += 1
            for pid, called in reversed(runs[e["id"]]):
                if pid == e["pid"]:
                    called.append(e["step"])
                    break
    # A re-run that called a step, but not the first one first, replayed at least that one.
    replayed = sum(1 for task_runs in runs.values() for _, called in task_runs[1:]
                   if called and called[0] != steps[0])
    return StepFigures(
        tasks=len(runs), calls={name: sum(c.values()) for name, c in calls.items()},
        again={name: {t for t, n in c.items() if n > 1} for name, c in calls.items()},
        replayed=replayed)


def unfinished(url: str) -> set[str]:
    """Ids the store holds as not finished (leased or running), read right after a kill."""
    sql = "SELECT id FROM afterwork_tasks WHERE state IN ('leased', 'running')"
    if url.startswith("sqlite"):
        import sqlite3
        from contextlib import closing

        with closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as conn:
            return {row[0] for row in conn.execute(sql)}
    import psycopg

    with psycopg.connect(url) as conn:
        return {row[0] for row in conn.execute(sql)}
