"""The threads `def` tasks run on: daemonic (a process never waits for them at exit),
bounded, in the caller's context."""

from __future__ import annotations

import contextvars
import threading
import time

from afterwork._threads import DaemonThreads

_where: contextvars.ContextVar[str] = contextvars.ContextVar("where", default="none")


def test_a_call_runs_on_a_daemon_thread_in_the_callers_context() -> None:
    pool = DaemonThreads(2)
    _where.set("caller")
    seen = pool.submit(lambda: (threading.current_thread().daemon, _where.get())).result(5)
    assert seen == (True, "caller")


def test_no_more_threads_than_the_size_and_the_rest_queue() -> None:
    pool = DaemonThreads(2)
    gate = threading.Event()
    names: set[str] = set()

    def hold() -> None:
        names.add(threading.current_thread().name)
        gate.wait(5)

    calls = [pool.submit(hold) for _ in range(5)]
    time.sleep(0.2)
    assert sum(c.running() for c in calls) == 2
    gate.set()
    for c in calls:
        c.result(5)
    assert len(names) == 2


def test_a_call_cancelled_before_it_started_never_runs() -> None:
    pool = DaemonThreads(1)
    gate = threading.Event()
    ran: list[int] = []
    first = pool.submit(gate.wait, 5)
    second = pool.submit(ran.append, 1)
    assert second.cancel()
    gate.set()
    first.result(5)
    time.sleep(0.1)
    assert ran == []
