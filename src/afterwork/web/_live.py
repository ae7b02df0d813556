"""The dashboard's live updates: one shared read feeds every open tab.

`GET {dashboard_prefix}/live` is a Server-Sent Events stream of the overview's parts (HTML
fragments the page swaps in). However many tabs are open, one `Pulse` per process reads the
store: when this process's events stream reports a change (debounced), and every
PULSE_SECONDS for what other processes do. Each tab gets the newest snapshot when it
changed; a slow tab skips to the newest rather than queueing old ones. Streams count
against `max_streams` like the status API's.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .._errors import AfterworkError
from .._events import TaskEvent
from ._api import KEEPALIVE_SECONDS, STREAM_SECONDS_MAX, SlotStream, StreamSlots
from ._auth import deny
from ._watch import Reads

if TYPE_CHECKING:
    from ._console import Console

PULSE_SECONDS = 2.0  # how often the shared read runs while a tab is open (other processes)
DEBOUNCE_SECONDS = 0.3  # after an event, wait this long for more before reading once


class Pulse:
    """Reads `snapshot` for every subscriber at once (see the module's docstring)."""

    def __init__(self, console: Console, reads: Reads, snapshot: Callable[[], dict[str, Any]]) -> None:
        self._console = console
        self._reads = reads
        self._snapshot = snapshot
        self._tabs: list[asyncio.Queue[str]] = []
        self._latest = ""
        self._kick: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._unsubscribe: Callable[[], None] | None = None

    @contextmanager
    def tab(self) -> Iterator[asyncio.Queue[str]]:
        """A queue that gets the newest snapshot (JSON) whenever it changed, first at once."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop or self._task is None or self._task.done():
            self._loop, self._kick, self._latest = loop, asyncio.Event(), ""
            self._task = loop.create_task(self._run())
        inbox: asyncio.Queue[str] = asyncio.Queue(maxsize=1)
        if self._latest:
            inbox.put_nowait(self._latest)
        self._tabs.append(inbox)
        if self._unsubscribe is None:
            self._unsubscribe = self._console.subscribe(self._on_event)
        try:
            yield inbox
        finally:
            self._tabs.remove(inbox)
            if not self._tabs and self._unsubscribe is not None:
                self._unsubscribe()
                self._unsubscribe = None

    def _on_event(self, event: TaskEvent) -> None:
        loop, kick = self._loop, self._kick
        if loop is not None and kick is not None:
            with contextlib.suppress(RuntimeError):  # that loop is closed
                loop.call_soon_threadsafe(kick.set)

    def kick(self) -> None:
        """Read again soon (an operator's action changed what the page shows)."""
        if self._kick is not None:
            self._kick.set()

    async def _run(self) -> None:
        kick = self._kick
        assert kick is not None
        while True:
            await asyncio.sleep(0)  # let the first tab register
            if not self._tabs:
                return
            kick.clear()
            try:
                snapshot = json.dumps(await self._reads.run(self._snapshot), sort_keys=True)
            except AfterworkError:
                snapshot = self._latest  # the store is down: tabs keep what they show
            if snapshot != self._latest:
                self._latest = snapshot
                for inbox in self._tabs:
                    if inbox.full():
                        inbox.get_nowait()  # a slow tab skips to the newest
                    inbox.put_nowait(snapshot)
            with anyio.move_on_after(PULSE_SECONDS):
                await kick.wait()
            await asyncio.sleep(DEBOUNCE_SECONDS)


def live_route(console: Console, pulse: Pulse, slots: StreamSlots) -> Callable[[Request], Any]:
    settings = console.settings

    async def live(request: Request) -> Response:
        if (refused := await deny(settings, request)) is not None:
            return refused
        if not slots.take():
            return JSONResponse({"detail": f"too many event streams open ({slots.limit}); "
                                           "retry later"}, status_code=429, headers={"Retry-After": "5"})

        async def stream() -> AsyncIterator[str]:
            deadline = anyio.current_time() + STREAM_SECONDS_MAX
            with pulse.tab() as inbox:
                while (left := deadline - anyio.current_time()) > 0:
                    with anyio.move_on_after(min(left, KEEPALIVE_SECONDS)) as waited:
                        snapshot = await inbox.get()
                    yield (": keep-alive\n\n" if waited.cancelled_caught
                           else f"event: board\ndata: {snapshot}\n\n")

        return SlotStream(stream(), slots.give_back)

    return live
