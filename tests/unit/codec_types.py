"""Typed task signatures for the codec tests (module level, as stored tasks must be)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import enum
import uuid
from typing import Any

from pydantic import BaseModel


class Color(str, enum.Enum):
    RED = "red"
    BLUE = "blue"


class Server(BaseModel):
    hostname: str
    cpus: int
    seen: dt.datetime


@dataclasses.dataclass
class Point:
    x: int
    y: int


def typed(server: Server, point: Point, when: dt.datetime, key: uuid.UUID,
          price: decimal.Decimal, color: Color, *rest: Point, **extra: Color) -> None: ...


def untyped(when, key, price, day):  # type: ignore[no-untyped-def]
    ...


def untyped_object(thing):  # type: ignore[no-untyped-def]
    ...


def with_defaults(a: int, b: int = 1, c: int = 2, *, d: Any = None) -> None: ...
