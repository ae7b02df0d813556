"""The tasks a drain run executes, and the Afterwork the workers load (`tasks:aw`)."""

from __future__ import annotations

import asyncio
import os

from afterwork import Afterwork

aw = Afterwork(url=os.environ["AFTERWORK_URL"], run_in_app=False,
               concurrency=int(os.environ.get("DRAIN_CONCURRENCY", "64")))


async def noop() -> None:
    pass


async def sleep10() -> None:
    await asyncio.sleep(0.010)
