"""Tasks for the dashboard tests."""

from __future__ import annotations

import asyncio


async def login_user(user: str, password: str, settings: dict[str, object]) -> None:
    pass


async def boom() -> None:
    raise RuntimeError("boom on purpose")


async def nap(seconds: float) -> None:
    await asyncio.sleep(seconds)
