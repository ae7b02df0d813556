"""The dashboard's live updates: one shared read feeds every open tab.

`GET {dashboard_prefix}/live` is a Server-Sent Events stream of a view's parts (HTML
fragments the page swaps in): the overview's (`?state=failed&...`: with its filtered list),
the queues' (`?view=queues`) or the runners' (`?view=runners`); see `_feeds`. However many
tabs are open, one `Pulse` per process reads the store, every followed feed at once: when
this process's events stream reports a change (debounced), and every PULSE_SECONDS for what
other processes do. Each tab gets its feed's newest snapshot when
it changed; a slow tab skips to the newest rather than queueing old ones. Streams count
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
from ._feeds import Feed, feed_of, mark
from ._watch import Reads

if TYPE_CHECKING:
    from ._console import Console

PULSE_SECONDS = 2.0  # how often the shared read runs while a tab is open (other processes)
DEBOUNCE_SECONDS = 0.3  # after an event, wait this long for more before reading once


class Pulse:
    """Reads every followed feed for all subscribers at once (see the module's docstring)."""

    def __init__(self, console: Console, reads: Reads, read: Callable[[set[Feed]], dict[Feed, dict[str, str]]]
                 ) -> None:
        self._console = console
        self._reads = reads
        self._read = read
        self._tabs: dict[asyncio.Queue[str], Feed] = {}
        self._latest: dict[Feed, str] = {}
        self._kick: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._unsubscribe: Callable[[], None] | None = None

    @contextmanager
    def tab(self, feed: Feed) -> Iterator[asyncio.Queue[str]]:
        """A queue that gets the feed's newest parts (JSON) whenever they changed, first at once."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop or self._task is None or self._task.done():
            self._loop, self._kick, self._latest = loop, asyncio.Event(), {}
            self._task = loop.create_task(self._run())
        inbox: asyncio.Queue[str] = asyncio.Queue(maxsize=1)
        if feed in self._latest:
            inbox.put_nowait(self._latest[feed])
        else:
            self.kick()  # a feed no tab followed yet: read it now
        self._tabs[inbox] = feed
        if self._unsubscribe is None:
            self._unsubscribe = self._console.subscribe(self._on_event)
        try:
            yield inbox
        finally:
            del self._tabs[inbox]
            if not self._tabs and self._unsubscribe is not None:
                self._unsubscribe()
                self._unsubscribe = None

    def _on_event(self, event: TaskEvent) -> None:
        loop, kick = self._loop, self._kick
        if loop is not None and kick is not None:
            with contextlib.suppress(RuntimeError):  # that loop is closed
                loop.call_soon_threadsafe(kick.set)

    def latest(self, feed: Feed) -> str | None:
        """The feed's newest parts as last sent (JSON), if any."""
        return self._latest.get(feed)

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
            feeds = set(self._tabs.values())
            try:
                parts = await self._reads.run(self._read, feeds)
            except AfterworkError:
                parts = {}  # the store is down: tabs keep what they show
            self._latest = {f: s for f, s in self._latest.items() if f in feeds}
            for feed, shown in parts.items():
                snapshot = json.dumps({k: {"html": v, "mark": mark(v)} for k, v in shown.items()},
                                      sort_keys=True)
                if snapshot != self._latest.get(feed):
                    self._latest[feed] = snapshot
                    self._send(feed, snapshot)
            with anyio.move_on_after(PULSE_SECONDS):
                await kick.wait()
            await asyncio.sleep(DEBOUNCE_SECONDS)

    def _send(self, feed: Feed, snapshot: str) -> None:
        for inbox, followed in list(self._tabs.items()):
            if followed == feed:
                if inbox.full():
                    inbox.get_nowait()  # a slow tab skips to the newest
                inbox.put_nowait(snapshot)


def live_route(console: Console, pulse: Pulse, slots: StreamSlots) -> Callable[[Request], Any]:
    settings = console.settings

    async def live(request: Request) -> Response:
        if (refused := await deny(settings, request)) is not None:
            return refused
        try:
            feed = feed_of(request.query_params)
        except ValueError as exc:
            return JSONResponse({"detail": str(exc)}, status_code=400)
        if not slots.take():
            return JSONResponse({"detail": f"too many event streams open ({slots.limit}); "
                                           "retry later"}, status_code=429, headers={"Retry-After": "5"})

        async def stream() -> AsyncIterator[str]:
            deadline = anyio.current_time() + STREAM_SECONDS_MAX
            with pulse.tab(feed) as inbox:
                while (left := deadline - anyio.current_time()) > 0:
                    with anyio.move_on_after(min(left, KEEPALIVE_SECONDS)) as waited:
                        snapshot = await inbox.get()
                    if waited.cancelled_caught:  # the keep-alive carries the newest parts again:
                        # a tab that missed an update (a reconnect, a busy page) heals within
                        # KEEPALIVE_SECONDS; the page applies only the parts whose mark changed
                        again = pulse.latest(feed)
                        yield ": keep-alive\n\n" if again is None else f"event: board\ndata: {again}\n\n"
                    else:
                        yield f"event: board\ndata: {snapshot}\n\n"

        return SlotStream(stream(), slots.give_back)

    return live
