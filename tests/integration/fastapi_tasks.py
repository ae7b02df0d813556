"""Module-level tasks for tests/integration/test_fastapi_classes.py (storable by name)."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

from pydantic import BaseModel, SecretStr

SEEN: list[tuple[str, Any]] = []
_lock = threading.Lock()


def note(label: str, value: Any = None) -> None:
    with _lock:
        SEEN.append((label, value))


async def note_async(label: str, value: Any = None) -> None:
    note(label, value)


class Session:
    """A class pydantic has no schema for, as a SQLAlchemy Session."""

    def __init__(self) -> None:
        self.added: list[str] = []


def record_in(db: Session, msg: str) -> None:
    db.added.append(msg)
    note("record_in", msg)


def unannotated(value) -> None:  # type: ignore[no-untyped-def]
    note("unannotated", value)


class Point(BaseModel):
    x: int
    y: int


def annotated(value: Point) -> None:
    note("annotated", value)


def with_secret(token: SecretStr) -> None:
    note("with_secret", token.get_secret_value())


class Login(BaseModel):
    user: str
    password: SecretStr


def with_login(login: Login) -> None:
    note("with_login", login.password.get_secret_value())


def at_time(when: dt.datetime, plain=None) -> None:  # type: ignore[no-untyped-def]
    note("at_time", (when, plain))


def items(values: list[int]) -> None:
    note("items", list(values))


def fails() -> None:
    note("fails")
    raise RuntimeError("fails on purpose")
