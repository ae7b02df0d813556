"""Finding tasks: the overview's filter, which "all that match" in the bulk API acts on too
(state, name, queue, id prefix, an argument's value, a time range)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from html import escape
from typing import TYPE_CHECKING, Any

from .._models import TaskRecord
from ._api import states_from

if TYPE_CHECKING:
    from ._console import Console

CANDIDATES_PER_SHOWN = 4  # argument search: stored matches read per task shown (some are secret)
FIELDS = ("state", "name", "queue", "id", "arg", "since", "until")


def _utc(raw: str, label: str) -> float:
    """A time from a filter field: ISO 8601, in UTC unless it names its zone."""
    try:
        at = dt.datetime.fromisoformat(raw)
    except ValueError:
        raise ValueError(f"{label}={raw[:40]!r}: give a time as 2026-01-31T14:00 (UTC)") from None
    return (at if at.tzinfo else at.replace(tzinfo=dt.timezone.utc)).timestamp()


def _scalars(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [s for v in value.values() for s in _scalars(v)]
    if isinstance(value, list):
        return [s for v in value for s in _scalars(v)]
    return [str(value)]


@dataclass(frozen=True)
class Filter:
    """Which tasks an operator looks for (ValueError from `of`: what is wrong)."""

    state: str | None = None
    name: str | None = None
    queue: str | None = None
    id: str | None = None
    """The start of a task's id."""
    arg: str | None = None
    """Text inside one of the task's arguments, as an operator sees them: a value masked as
    a secret never matches."""
    since: str | None = None
    until: str | None = None

    @classmethod
    def of(cls, fields: Mapping[str, Any]) -> Filter:
        raw: dict[str, str | None] = {}
        for key in FIELDS:
            value = fields.get(key)
            if value is not None and not isinstance(value, str):
                raise ValueError(f"{key}: give text")
            text = (value or "").strip() or None
            if text is not None and (not text.isprintable() or len(text) > 200):
                raise ValueError(f"{key}= holds control characters or is too long")
            if text is not None and key in ("since", "until"):
                _utc(text, key)
            raw[key] = text
        states_from(raw["state"])
        return cls(**raw)

    @property
    def active(self) -> bool:
        return any(asdict(self).values())

    def load(self, console: Console, limit: int) -> list[TaskRecord]:
        """Up to `limit` matching tasks, newest first (blocks)."""
        if self.id:
            ids = console.tasks.ids_starting_with(self.id, limit)
            found = [r for r in console.tasks.get_many(ids).values() if self._keeps(r, console)]
            return sorted(found, key=lambda r: (-r.created_at, r.id))
        records = console.tasks.query(
            states=states_from(self.state), name=self.name, queue=self.queue,
            since=_utc(self.since, "since") if self.since else None,
            until=_utc(self.until, "until") if self.until else None,
            payload_has=self.arg, limit=limit * (CANDIDATES_PER_SHOWN if self.arg else 1))
        return [r for r in records if self.arg is None or self._shown_arg(r, console)][:limit]

    def _keeps(self, record: TaskRecord, console: Console) -> bool:
        """The other filters, for tasks found by id."""
        since, until = (_utc(t, k) if t else None for t, k in ((self.since, "since"), (self.until, "until")))
        return ((not self.state or record.state in states_from(self.state))
                and self.name in (None, record.name) and self.queue in (None, record.queue)
                and (since is None or record.created_at >= since)
                and (until is None or record.created_at < until)
                and (self.arg is None or self._shown_arg(record, console)))

    def _shown_arg(self, record: TaskRecord, console: Console) -> bool:
        shown = console.redactor.arguments(record.name, record.payload)[0]
        return any(self.arg in s for s in _scalars(shown)) if self.arg else True

    def match(self) -> str:
        """This filter as the bulk API's `match`, as an attribute value."""
        return escape(json.dumps({k: v for k, v in asdict(self).items() if v}))
