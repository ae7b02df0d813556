"""What the dashboard's views show, read from the store in one call each (run it on the API's
threads: `await reads.run(queues_view, console)`). Plain dicts, so that the JSON API and the
HTML pages show the same figures."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._models import TaskState, iso

if TYPE_CHECKING:
    from ._console import Console

FIGURES_WINDOW_SECONDS = 3600  # "lately": throughput and failure rate over the last hour
BUCKET_SECONDS = 300  # the queues view's chart: succeeded and failed per five minutes
HELD_SHOWN_MOST = 1000  # leased and running tasks read to say who holds what
QUEUE_CHARS_MAX = 200
WINDOWS = {"15m": 900.0, "1h": 3600.0, "24h": 86400.0, "7d": 7 * 86400.0}  # for per-name figures
FINISHED_READ_MOST = 20_000  # the newest finished tasks the per-name figures are computed over


def check_queue(queue: str) -> str:
    """A queue name from a URL or a form; ValueError says what is wrong with it."""
    if not queue or len(queue) > QUEUE_CHARS_MAX or not queue.isprintable():
        raise ValueError(f"queue {queue[:40]!r}: give a queue's name (printable, at most "
                         f"{QUEUE_CHARS_MAX} characters)")
    return queue


def _buckets(console: Console, now: float) -> Callable[[str], list[dict[str, Any]]]:
    """A queue's succeeded and failed per BUCKET_SECONDS over FIGURES_WINDOW_SECONDS, oldest
    first, gaps as zero (the queues view's chart), from one read for all queues."""
    last = int(now // BUCKET_SECONDS) * BUCKET_SECONDS
    starts = range(last - FIGURES_WINDOW_SECONDS + BUCKET_SECONDS, last + 1, BUCKET_SECONDS)
    counted: dict[str, dict[tuple[int, str], int]] = {}
    for queue, minute, state, n in console.tasks.finished_per_minute_by_queue(starts[0]):
        into = counted.setdefault(queue, {})
        key = (minute // BUCKET_SECONDS * BUCKET_SECONDS, state)
        into[key] = into.get(key, 0) + n

    def of(queue: str) -> list[dict[str, Any]]:
        rows = counted.get(queue, {})
        return [{"minute": iso(at), "succeeded": rows.get((at, "succeeded"), 0),
                 "failed": rows.get((at, "failed"), 0)} for at in starts]

    return of


def queues_view(console: Console) -> list[dict[str, Any]]:
    """Each queue that has tasks waiting or running, finished some lately, is paused, limited
    or holds rate-limited task names: depth, oldest wait, running against its limit, its
    names' rate limits, throughput and failure rate (in all and per BUCKET_SECONDS)."""
    now = time.time()
    tasks = console.tasks
    paused = tasks.paused_queues()
    figures = {f.queue: f for f in tasks.queue_figures(now, now - FIGURES_WINDOW_SECONDS)}
    limits = console.settings.queue_limits
    rated = console.rate_limits()
    buckets = _buckets(console, now)
    shown = []
    for queue in sorted({*figures, *paused, *limits, *rated}):
        f = figures.get(queue)
        finished = (f.succeeded + f.failed) if f else 0
        shown.append({
            "queue": queue,
            "waiting": f.waiting if f else 0,
            "oldest_wait_seconds": round(now - f.oldest_due_at, 1) if f and f.oldest_due_at else None,
            "running": f.running if f else 0,
            "limit": limits.get(queue),
            "rate_limits": [{"name": name, "starts": starts, "per_seconds": per}
                            for name, (starts, per) in sorted(rated.get(queue, {}).items())],
            "succeeded_last_hour": f.succeeded if f else 0,
            "failed_last_hour": f.failed if f else 0,
            "failure_rate": round(f.failed / finished, 3) if f and finished else None,
            "paused": queue in paused,
            "paused_at": iso(paused[queue]) if queue in paused else None,
            "per_5_minutes": buckets(queue),
        })
    return shown


def runners_view(console: Console) -> list[dict[str, Any]]:
    """Each runner that reported: its process, what it serves and holds, whether it is alive.
    A dead one (no heartbeat lately) lists the tasks it held: they run again once their
    leases expire."""
    now = time.time()
    held: dict[str, list[str]] = {}
    leased = [TaskState.LEASED, TaskState.RUNNING]
    for record in console.tasks.query(states=leased, limit=HELD_SHOWN_MOST):
        if record.lease_owner:
            held.setdefault(record.lease_owner, []).append(record.id)
    shown = []
    for runner in console.tasks.runners():
        shown.append({
            "owner": runner.owner,
            "host": runner.host,
            "pid": runner.pid,
            "kind": runner.kind,
            "queues": None if runner.queues is None else list(runner.queues),
            "concurrency": runner.concurrency or None,
            "running": runner.running,
            "started_at": iso(runner.started_at),
            "heartbeat_at": iso(runner.heartbeat_at),
            "alive": runner.alive(now),
            "held": held.get(runner.owner, []) if not runner.alive(now) else [],
        })
    return shown


def _percentiles(values: list[float]) -> tuple[float | None, float | None]:
    """(p50, p95) by nearest rank; (None, None) for no values."""
    if not values:
        return None, None
    ordered = sorted(values)

    def rank(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, max(0, math.ceil(p * len(ordered)) - 1))], 3)

    return rank(0.50), rank(0.95)


def names_view(console: Console, window: str) -> dict[str, Any]:
    """Per task name, over the tasks finished in `window` (a key of WINDOWS): how many, the
    failure rate, run time p50/p95 (start to finish of the last attempt) and wait p50/p95 (due
    to started, as Oban's queue time: a delayed task's delay is not waiting)."""
    since = time.time() - WINDOWS[window]
    rows = console.tasks.finished_times(since, FINISHED_READ_MOST)
    by_name: dict[str, list[tuple[str, float, float | None, float]]] = {}
    for name, state, run_at, started_at, finished_at in rows:
        by_name.setdefault(name, []).append((state, run_at, started_at, finished_at))
    shown = []
    for name, done in sorted(by_name.items(), key=lambda item: -len(item[1])):
        failed = sum(1 for state, *_ in done if state == "failed")
        runs = [f - s for _, _, s, f in done if s is not None]
        waits = [max(0.0, s - r) for _, r, s, _ in done if s is not None]
        (run50, run95), (wait50, wait95) = _percentiles(runs), _percentiles(waits)
        shown.append({"name": name, "count": len(done), "failed": failed,
                      "failure_rate": round(failed / len(done), 3), "run_p50": run50, "run_p95": run95,
                      "wait_p50": wait50, "wait_p95": wait95})
    return {"window": window, "since": iso(since), "partial": len(rows) >= FINISHED_READ_MOST,
            "names": shown}
