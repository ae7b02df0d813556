"""Tasks for the dashboard tests."""

from __future__ import annotations

import asyncio

from afterwork import task


async def login_user(user: str, password: str, settings: dict[str, object]) -> None:
    pass


async def boom() -> None:
    raise RuntimeError("boom on purpose")


async def nap(seconds: float) -> None:
    await asyncio.sleep(seconds)


async def leaky_login(user: str, password: str, dsn: str = "") -> None:
    raise RuntimeError(f"could not log {user} in with {password} at {dsn}")


async def with_iban(iban: str, amount: int) -> None:
    pass


FLAKY = {"failing": True}  # the browser test's tasks fail until it sets this False


async def flaky(n: int) -> None:
    if FLAKY["failing"]:
        raise RuntimeError(f"flaky {n} failed on purpose")


async def nightly_report() -> None:
    pass


async def answer() -> int:
    return 42


@task(queue="hooks", rate_limit=(2, 60.0))  # the queues view shows it under "hooks"
async def rated_hook() -> None:
    pass
