"""What the dashboard's views show, read from the store in one call each (run it on the API's
threads: `await reads.run(queues_view, console)`). Plain dicts, so that the JSON API and the
HTML pages show the same figures."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from .._models import TaskState, iso

if TYPE_CHECKING:
    from ._console import Console

FIGURES_WINDOW_SECONDS = 3600.0  # "lately": throughput and failure rate over the last hour
HELD_SHOWN_MOST = 1000  # leased and running tasks read to say who holds what
QUEUE_CHARS_MAX = 200


def check_queue(queue: str) -> str:
    """A queue name from a URL or a form; ValueError says what is wrong with it."""
    if not queue or len(queue) > QUEUE_CHARS_MAX or not queue.isprintable():
        raise ValueError(f"queue {queue[:40]!r}: give a queue's name (printable, at most "
                         f"{QUEUE_CHARS_MAX} characters)")
    return queue


def queues_view(console: Console) -> list[dict[str, Any]]:
    """Each queue that has tasks waiting or running, finished some lately, is paused or
    limited: depth, oldest wait, running against its limit, throughput, failure rate."""
    now = time.time()
    tasks = console.tasks
    paused = tasks.paused_queues()
    figures = {f.queue: f for f in tasks.queue_figures(now, now - FIGURES_WINDOW_SECONDS)}
    limits = console.settings.queue_limits
    shown = []
    for queue in sorted({*figures, *paused, *limits}):
        f = figures.get(queue)
        finished = (f.succeeded + f.failed) if f else 0
        shown.append({
            "queue": queue,
            "waiting": f.waiting if f else 0,
            "oldest_wait_seconds": round(now - f.oldest_due_at, 1) if f and f.oldest_due_at else None,
            "running": f.running if f else 0,
            "limit": limits.get(queue),
            "succeeded_last_hour": f.succeeded if f else 0,
            "failed_last_hour": f.failed if f else 0,
            "failure_rate": round(f.failed / finished, 3) if f and finished else None,
            "paused": queue in paused,
            "paused_at": iso(paused[queue]) if queue in paused else None,
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
