"""Durable steps: named calls inside a task whose results are recorded, so that a task run
again (a retry, a crashed or killed runner) returns what its finished steps returned instead
of calling them again, and goes on from its first unfinished step.

    @app.post("/orders/{order_id}/pay")
    async def pay(order_id: str, tasks: BackgroundTasks) -> None:
        tasks.add_task(fulfil, order_id)

    async def fulfil(order_id: str) -> None:
        charge = await afterwork.step("charge", charge_card, order_id, once=True)
        await afterwork.step("email", send_receipt, order_id, charge["id"])

When a record is written (the guarantee each kind of step gets):

- A step is recorded when it returns, by one write that rides with the writer's next group
  (the outcome folding): no commit of its own. If the process dies before that group
  commits, the step runs again on the next attempt: at least once.
- An at-most-once step (`once=True`) writes "started" and waits until it is committed before
  it runs, and waits for its "finished" record too. If it started and its end was never
  recorded, the task fails (StepNotRepeatedError) instead of running it again.

Records are read once per run, at the task's first step: a task that never calls a step
costs nothing more. Steps run one after another in the task's own flow (see docs/steps.md).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar, overload

from pydantic_core import to_json

from . import _codec
from ._aio import on_event_loop
from ._context import TaskContext, running_task
from ._errors import NotStorableError, StepError, StepMismatchError, StepNotRepeatedError
from ._models import (
    STEP_FAILED,
    STEP_FINISHED,
    STEP_STARTED,
    Changes,
    StepRecord,
    StepWrite,
    iso,
)
from ._progress import progress_of_steps
from ._writer import Writer
from .stores import Store

T = TypeVar("T")
ERROR_CHARS = 500  # of a failed step's error, as recorded


class StepRunner(Protocol):
    """What a task's steps need of the runner that runs it (`TaskContext.steps`)."""

    store: Store
    writer: Writer
    owner: str


@dataclass(slots=True)
class _Journal:
    """The steps of one run of one task: what earlier attempts recorded, and the next place."""

    context: TaskContext
    recorded: dict[int, StepRecord]
    next_seq: int = 0


@dataclass(slots=True)
class _Call:
    """One `step(...)` call: its place, the record it replays (if any), and its writes."""

    runner: StepRunner
    context: TaskContext
    seq: int
    name: str
    fn: Callable[..., Any]
    once: bool
    replay: StepRecord | None
    started_at: float = field(default_factory=time.time)
    calls: int = 0

    def write(self, state: str, **values: Any) -> StepWrite:
        return StepWrite(self.context.id, self.runner.owner, self.seq, self.name, state,
                         self.context.attempt, self.started_at, once=self.once, **values)

    def replayed(self) -> Any:
        assert self.replay is not None and self.replay.result is not None
        progress_of_steps(self.seq + 1, self.name)
        return _codec.decode_result(self.fn, json.loads(self.replay.result))

    def finished(self, value: Any) -> tuple[StepWrite, Any]:
        """The record of a step that returned, and the value the task gets: what was
        recorded, decoded, the same as a replay returns."""
        try:
            data = _codec.encode_result(self.fn, value)
        except NotStorableError as exc:
            raise StepError(f"step {self.name!r} of task {self.context.id} returned a value "
                            f"afterwork cannot record ({exc}); it ran, so the task fails rather "
                            "than run it again unrecorded") from exc
        write = self.write(STEP_FINISHED, finished_at=time.time(), result=to_json(data).decode(),
                           runs=0 if self.once else self.calls)
        progress_of_steps(self.seq + 1, self.name)
        return write, _codec.decode_result(self.fn, data)

    def failed(self, exc: BaseException) -> StepWrite:
        error = f"{type(exc).__name__}: {exc}"[:ERROR_CHARS]
        return self.write(STEP_FAILED, finished_at=time.time(), error=error,
                          runs=0 if self.once else self.calls)

    def not_repeated(self, exc: BaseException) -> StepNotRepeatedError:
        return StepNotRepeatedError(
            f"step {self.name!r} of task {self.context.id} runs at most once and raised "
            f"{type(exc).__name__}: {exc}; it is not run again, so the task fails (return a "
            "value instead of raising for an outcome the task should go on with)")

    def check_started(self, start: StepWrite) -> None:
        if not start.applied:
            raise StepError(f"step {self.name!r} of task {self.context.id} was not started: "
                            "this runner lost the task's lease (another runner may run it)")


_journal: ContextVar[_Journal | None] = ContextVar("afterwork_steps", default=None)


def _running() -> tuple[TaskContext, StepRunner] | None:
    """The stored task running here and its runner; None outside one (a direct call, a test,
    a task that runs in memory only): there steps are plain calls, recorded nowhere."""
    running = running_task.get()
    if running is None or running.runner is None:
        return None
    return running.view(), running.runner


def _check(name: str, once: bool, retries: int, retry_delay: float) -> None:
    if not isinstance(name, str) or not name:
        raise ValueError(f"a step's name must be a non-empty string, not {name!r}")
    if retries < 0 or retry_delay < 0:
        raise ValueError(f"step {name!r}: retries and retry_delay must not be negative")
    if once and retries:
        raise ValueError(f"step {name!r}: once=True means at most one call, so it takes no "
                         "retries; drop one of them")


def _journal_of(context: TaskContext, load: Callable[[], list[StepRecord]] | None
                ) -> _Journal | None:
    """This run's journal; None when it must be loaded first (`load` given: load it now)."""
    journal = _journal.get()
    if journal is not None and journal.context is context:
        return journal
    if load is None:
        return None
    journal = _Journal(context, {r.seq: r for r in load()})
    _journal.set(journal)
    return journal


def _next_call(journal: _Journal, runner: StepRunner, name: str, fn: Callable[..., Any],
               once: bool) -> _Call:
    """The call at the journal's next place, checked against what was recorded there."""
    context, seq = journal.context, journal.next_seq
    journal.next_seq += 1
    recorded = journal.recorded.get(seq)
    if recorded is not None and recorded.name != name:
        raise StepMismatchError(
            f"task {context.id} ({context.name}) calls step {name!r} as its step #{seq + 1}, but "
            f"an earlier attempt recorded step {recorded.name!r} there: the task's code changed "
            "between attempts, or it chose its steps from something that differs between runs. "
            "Its recorded steps cannot apply, so the task fails; see docs/steps.md")
    if recorded is not None and recorded.state != STEP_FINISHED and recorded.once:
        how = ("raised" if recorded.state == STEP_FAILED
               else "started and its end was never recorded")
        raise StepNotRepeatedError(
            f"step {name!r} (#{seq + 1}) of task {context.id} runs at most once: it {how} on "
            f"attempt {recorded.attempt} at {iso(recorded.started_at)}, so it may have done its "
            "work and is not run again. Check its effect, then retry the task (afterwork retry) "
            "to run it again, or leave the task failed")
    replay = recorded if recorded is not None and recorded.state == STEP_FINISHED else None
    return _Call(runner, context, seq, name, fn, once, replay)


async def step(name: str, fn: Callable[..., Awaitable[T]] | Callable[..., T], /, *args: Any,
               once: bool = False, retries: int = 0, retry_delay: float = 1.0,
               **kwargs: Any) -> T:
    """Run `fn(*args, **kwargs)` as the task's step `name` (in an `async def` task), or return
    what it returned when an earlier attempt recorded it. `fn` may be `async def` or `def`
    (a `def` one runs inline, as a direct call would).

    `retries`: calls again on an exception, up to that many times, `retry_delay` seconds
    apart (doubling), before the exception goes to the task (and its own retries).
    `once=True`: at most once, ever; if it started and its end was never recorded, the task
    fails with StepNotRepeatedError instead of calling it again. Outside a stored task (a
    direct call, a test) it is a plain call, recorded nowhere."""
    _check(name, once, retries, retry_delay)
    running = _running()
    if running is None:
        return await _calls(_Tries(retries, retry_delay), fn, args, kwargs)  # type: ignore[no-any-return]
    context, runner = running
    journal = _journal_of(context, None)
    if journal is None:
        recorded = await asyncio.to_thread(runner.store.steps_of, context.id)
        journal = _journal_of(context, lambda: recorded)
        assert journal is not None
    call = _next_call(journal, runner, name, fn, once)
    if call.replay is not None:
        return call.replayed()  # type: ignore[no-any-return]
    if once:
        start = call.write(STEP_STARTED)
        await asyncio.wrap_future(runner.writer.submit(Changes(steps=[start])))
        call.check_started(start)
    tries = _Tries(retries, retry_delay)
    try:
        value = await _calls(tries, fn, args, kwargs)
    except Exception as exc:
        call.calls = tries.made
        await _record(runner, call.failed(exc), wait=once)
        if once:
            raise call.not_repeated(exc) from exc
        raise
    call.calls = tries.made
    write, result = call.finished(value)
    await _record(runner, write, wait=once)
    return result  # type: ignore[no-any-return]


@overload
def step_sync(name: str, fn: Callable[..., Awaitable[T]], /, *args: Any, once: bool = False,
              retries: int = 0, retry_delay: float = 1.0, **kwargs: Any) -> T: ...
@overload
def step_sync(name: str, fn: Callable[..., T], /, *args: Any, once: bool = False,
              retries: int = 0, retry_delay: float = 1.0, **kwargs: Any) -> T: ...
def step_sync(name: str, fn: Callable[..., Any], /, *args: Any, once: bool = False,
              retries: int = 0, retry_delay: float = 1.0, **kwargs: Any) -> Any:
    """`step` for a `def` task (it runs on afterwork's task threads): the same records and
    options; `fn` must be a `def` function."""
    _check(name, once, retries, retry_delay)
    if on_event_loop():
        raise StepError(f"afterwork.step_sync({name!r}, ...) blocks, and this is an event "
                        "loop: in an `async def` task, use `await afterwork.step(...)`")
    if inspect.iscoroutinefunction(fn):
        raise TypeError(f"step {name!r}: {fn.__qualname__} is `async def`; a `def` task cannot "
                        "await it (make the task `async def` and use afterwork.step)")
    running = _running()
    if running is None:
        return _calls_sync(_Tries(retries, retry_delay), fn, args, kwargs)
    context, runner = running
    journal = _journal_of(context, lambda: runner.store.steps_of(context.id))
    assert journal is not None
    call = _next_call(journal, runner, name, fn, once)
    if call.replay is not None:
        return call.replayed()
    if once:
        start = call.write(STEP_STARTED)
        runner.writer.submit(Changes(steps=[start])).result()
        call.check_started(start)
    tries = _Tries(retries, retry_delay)
    try:
        value = _calls_sync(tries, fn, args, kwargs)
    except Exception as exc:
        call.calls = tries.made
        _record_sync(runner, call.failed(exc), wait=once)
        if once:
            raise call.not_repeated(exc) from exc
        raise
    call.calls = tries.made
    write, result = call.finished(value)
    _record_sync(runner, write, wait=once)
    return result


@dataclass(slots=True)
class _Tries:
    """A step's own retries: how many calls it may still make, the next pause, calls made."""

    retries: int
    delay: float
    made: int = 0

    def again(self) -> float | None:
        """After a failed call: the pause before the next, or None (no retries left)."""
        if self.made > self.retries:
            return None
        pause, self.delay = self.delay, self.delay * 2
        return pause


async def _calls(tries: _Tries, fn: Callable[..., Any], args: tuple[Any, ...],
                 kwargs: dict[str, Any]) -> Any:
    while True:
        tries.made += 1
        try:
            value = fn(*args, **kwargs)
            return await value if inspect.isawaitable(value) else value
        except Exception:
            pause = tries.again()
            if pause is None:
                raise
        await asyncio.sleep(pause)


def _calls_sync(tries: _Tries, fn: Callable[..., Any], args: tuple[Any, ...],
                kwargs: dict[str, Any]) -> Any:
    while True:
        tries.made += 1
        try:
            return fn(*args, **kwargs)
        except Exception:
            pause = tries.again()
            if pause is None:
                raise
        time.sleep(pause)


async def _record(runner: StepRunner, write: StepWrite, *, wait: bool) -> None:
    if wait:
        await asyncio.wrap_future(runner.writer.submit(Changes(steps=[write])))
    else:
        runner.writer.post(Changes(steps=[write]))


def _record_sync(runner: StepRunner, write: StepWrite, *, wait: bool) -> None:
    if wait:
        runner.writer.submit(Changes(steps=[write])).result()
    else:
        runner.writer.post(Changes(steps=[write]))
