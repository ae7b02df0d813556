"""Waits that honour cancellation on every Python afterwork supports.

Before Python 3.12, `asyncio.wait_for` swallows a cancellation that arrives in the same loop
step as the awaited thing completes (CPython gh-86296): the caller goes on as if never
cancelled. A loop built on it (`while True: await wait_for(event.wait(), t)`) then survives
its `cancel()`, and whatever awaits that loop (a runner's shutdown) waits forever. anyio's
cancel scopes do not have that flaw, so every timed wait goes through here.
"""

from __future__ import annotations

import asyncio

import anyio


async def wait_event(event: asyncio.Event, seconds: float) -> bool:
    """Wait until `event` is set or `seconds` have passed; True if it was set."""
    with anyio.move_on_after(seconds):
        await event.wait()
    return event.is_set()


def on_event_loop() -> bool:
    """Whether this thread runs an event loop right now (a blocking call here would stall it)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
