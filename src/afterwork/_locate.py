"""Which Afterwork code means when it names none: `defer()`, `in_transaction()` and a task
handle waiting for its result use the Afterwork of the runner or app whose code runs (the
context's), else the one constructed last."""

from __future__ import annotations

import weakref
from contextvars import ContextVar
from typing import Protocol

from ._events import Events
from .stores import Store


class Located(Protocol):
    """What a caller without an Afterwork reaches (an `Intake` is one)."""

    store: Store
    events: Events

    def open_storage(self) -> None: ...


current: ContextVar[Located | None] = ContextVar("afterwork_intake", default=None)
"""Set while a runner runs a task and while an app's lifespan runs: `defer()` there uses the
Afterwork of that runner or app."""

_latest: weakref.ref[Located] | None = None  # otherwise: the Afterwork constructed last


def set_default(found: Located) -> None:
    global _latest
    _latest = weakref.ref(found)


def find() -> Located | None:
    """The context's, else the latest one still alive."""
    found = current.get()
    if found is None and _latest is not None:
        found = _latest()
    return found
