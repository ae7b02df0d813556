"""The threads `def` tasks run on: afterwork's own, apart from the request thread pool, and
daemonic.

A Python thread cannot be stopped from outside. At shutdown a `def` task still running after
the grace period keeps its lease (renewed while the process lives) instead of being handed
back, so that nobody else runs it meanwhile; the process must then be able to exit without
waiting for that thread, and the lease decides who runs the task next. Non-daemon threads
(anyio's, concurrent.futures') would hold the interpreter's exit until the task returned.
"""

from __future__ import annotations

import contextvars
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any


class DaemonThreads:
    """At most `size` threads, started on demand, kept for the process's life."""

    def __init__(self, size: int, name: str = "afterwork-task") -> None:
        self._size = size
        self._name = name
        self._work: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads = 0
        self._idle = 0

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        """Run `fn(*args, **kwargs)` on a task thread, in the caller's context (contextvars:
        `current_task()` works inside). Cancelling the future before it starts skips it."""
        future: Future[Any] = Future()
        context = contextvars.copy_context()
        self._work.put((lambda: context.run(fn, *args, **kwargs), future))
        with self._lock:  # more calls waiting than threads waiting for calls: one more thread
            if self._threads < self._size and self._work.qsize() > self._idle:
                self._threads += 1
                threading.Thread(target=self._serve, name=f"{self._name}-{self._threads}",
                                 daemon=True).start()
        return future

    def _serve(self) -> None:
        while True:
            with self._lock:
                self._idle += 1
            call, future = self._work.get()
            with self._lock:
                self._idle -= 1
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(call())
                except BaseException as exc:  # the task's own failure, handed to the runner
                    future.set_exception(exc)
            del call, future  # drop the task's arguments while idle
