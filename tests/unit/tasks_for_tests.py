"""Module-level task functions (storable) the unit tests schedule; they record into EVENTS."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

EVENTS: list[tuple[Any, ...]] = []
LOOP_THREAD: dict[str, int] = {}


async def record(label: str, value: Any = None) -> None:
    EVENTS.append((label, value, threading.get_ident()))


def record_sync(label: str, value: Any = None) -> None:
    EVENTS.append((label, value, threading.get_ident()))


async def slow_record(label: str, seconds: float) -> None:
    await asyncio.sleep(seconds)
    EVENTS.append((label, None, threading.get_ident()))


async def fail(label: str) -> None:
    EVENTS.append((label, "failing", threading.get_ident()))
    raise RuntimeError(f"{label} failed on purpose")


def labels() -> list[str]:
    return [e[0] for e in EVENTS]
