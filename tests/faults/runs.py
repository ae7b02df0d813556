"""What a fault run did, from the tasks' own log (see fault_app) and the requests' answers:
accepted, 503s, lost, duplicated and overlapping executions. Times are on the machine's boot
clock, which no faked wall clock changes."""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from ..procs import complete_lines
from .fault_app import TICK_SECONDS, boot_clock


@dataclass
class Execution:
    task: str
    pid: int
    start: float
    last: float  # its end, or its last tick if it never ended (its process stopped)
    ended: bool
    wall_skew: float  # the process's wall clock minus the real time, at the start


def executions(log: Path) -> list[Execution]:
    found: dict[tuple[str, int, int], Execution] = {}
    if not log.exists():
        return []
    for raw in complete_lines(log):
        e = json.loads(raw)
        key = (e["id"], e["pid"], e["attempt"])
        if e["event"] == "start":
            found[key] = Execution(e["id"], e["pid"], e["at"], e["at"], False,
                                   e["wall"] - time.time() + (boot_clock() - e["at"]))
        elif key in found:
            found[key].last = e["at"]
            found[key].ended = e["event"] == "end"
    return list(found.values())


def ended(log: Path) -> set[str]:
    return {x.task for x in executions(log) if x.ended}


def overlapping(runs: list[Execution], exited_at: dict[int, float] | None = None) -> int:
    """Pairs of executions of one task that ran at the same moment. One that never ended ran
    until its process exited (`exited_at`, by pid) or, if unknown, a tick past its last."""
    by_task: dict[str, list[Execution]] = defaultdict(list)
    for x in runs:
        by_task[x.task].append(x)
    count = 0
    for spans in by_task.values():
        spans.sort(key=lambda x: x.start)
        for i, a in enumerate(spans):
            stop = a.last if a.ended else (exited_at or {}).get(a.pid, a.last + TICK_SECONDS)
            count += sum(1 for b in spans[i + 1:] if b.start < stop)
    return count


@dataclass
class Answer:
    sent: float
    done: float
    status: int  # 0: no answer (connection error)
    ids: list[str]


@dataclass
class Load:
    """Bounded load: `clients` threads posting `path(n)` until `requests` were sent or
    `seconds` passed, whichever first. `paced`: the budget lasts the whole `seconds` (each
    client sends at most one request per `clients * seconds / requests`; a fault run needs
    requests after its fault, and on a fast machine an unpaced load spent its budget before
    the fault ended)."""

    url: str
    path: str = "/job/{n}?seconds=0.05"
    clients: int = 8
    requests: int = 2000
    seconds: float = 10.0
    timeout_seconds: float = 30.0
    paced: bool = False
    answers: list[Answer] = field(default_factory=list)
    _thread: threading.Thread | None = None
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> Load:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> list[Answer]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.seconds + self.timeout_seconds + 10)
        return self.answers

    def _run(self) -> None:
        counter = iter(range(self.requests))
        lock = threading.Lock()
        deadline = time.monotonic() + self.seconds
        spacing = self.clients * self.seconds / self.requests if self.paced else 0.0

        def client() -> None:
            with httpx.Client(timeout=self.timeout_seconds) as http:
                while not self._stop.is_set() and time.monotonic() < deadline:
                    with lock:
                        n = next(counter, None)
                    if n is None:
                        return
                    next_at = time.monotonic() + spacing
                    sent = boot_clock()
                    try:
                        r = http.post(self.url + self.path.format(n=n))
                        status = r.status_code
                        ids = r.json()["ids"] if status == 200 else []
                    except httpx.HTTPError:
                        status, ids = 0, []
                    with lock:
                        self.answers.append(Answer(sent, boot_clock(), status, ids))
                    self._stop.wait(max(0.0, next_at - time.monotonic()))

        with ThreadPoolExecutor(self.clients) as pool:
            for _ in range(self.clients):
                pool.submit(client)


def accepted(answers: list[Answer], after: float | None = None) -> set[str]:
    return {i for a in answers if a.status == 200 and (after is None or a.sent >= after)
            for i in a.ids}


def wait_until_ended(log: Path, ids: set[str], seconds: float) -> set[str]:
    """The ids still not ended after waiting up to `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        missing = ids - ended(log)
        if not missing:
            return set()
        time.sleep(0.2)
    return ids - ended(log)


def summary(name: str, *, accepted: int, lost: int, overlaps: int, duplicates: int = 0,
            unavailable: int = 0, recovered_seconds: float | None = None, extra: str = "") -> str:
    recovery = f", recovered {recovered_seconds:.1f}s after the fault ended" if (
        recovered_seconds is not None) else ""
    return (f"\nfaults: {name}: {accepted} tasks accepted, {unavailable} 503s, {lost} lost, "
            f"{duplicates} duplicate executions, {overlaps} overlapping{recovery}"
            f"{'; ' + extra if extra else ''}")


@dataclass
class FaultRun:
    answers: list[Answer]
    fault_at: float  # boot clock
    cleared_at: float

    @property
    def unavailable(self) -> int:
        return sum(1 for a in self.answers if a.status == 503)

    @property
    def other_errors(self) -> list[int]:
        return sorted({a.status for a in self.answers} - {200, 503})

    def slowest(self) -> float:
        return max((a.done - a.sent for a in self.answers), default=0.0)

    def recovered_seconds(self) -> float | None:
        """From the end of the fault to the first request sent after it that got a 200."""
        after = [a.done for a in self.answers if a.status == 200 and a.sent >= self.cleared_at]
        return min(after) - self.cleared_at if after else None


def under_fault(url: str, start: Callable[[], None], clear: Callable[[], None], *,
                path: str, before_seconds: float = 1.5, fault_seconds: float = 3.0,
                after_seconds: float = 3.0, clients: int = 8, requests: int = 3000) -> FaultRun:
    """Load the app, make the fault after `before_seconds`, clear it `fault_seconds` later,
    keep the load `after_seconds` more. Bounded: `requests` at most."""
    load = Load(url, path=path, clients=clients, requests=requests,
                seconds=before_seconds + fault_seconds + after_seconds, paced=True).start()
    time.sleep(before_seconds)
    fault_at = boot_clock()
    start()
    try:
        time.sleep(fault_seconds)
    finally:
        clear()
    cleared_at = boot_clock()
    time.sleep(after_seconds)
    return FaultRun(load.stop(), fault_at, cleared_at)


def rows_in(sqlite_path: Path, ids: set[str]) -> set[str]:
    """Which of `ids` the SQLite file at that path holds (what survives a restart)."""
    import sqlite3
    from contextlib import closing

    if not sqlite_path.exists():
        return set()
    with closing(sqlite3.connect(sqlite_path)) as conn:
        try:
            found = {r[0] for r in conn.execute("SELECT id FROM afterwork_tasks")}
        except sqlite3.OperationalError:  # no such table: a new, empty file
            return set()
    return ids & found
