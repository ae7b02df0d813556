"""What operators see of a task's arguments and errors: values whose names look like secrets
are shown as "[redacted]", passwords inside URLs are masked, and the same secret values are
masked in the task's traceback and history.

The names come from the stored payload and the function's signature. A positional value has
no name in the payload, so the function is looked up by its stored name (registered, or a
module-level function of the application's own packages); when this process cannot find it,
every positional value is hidden rather than guessed at.

    redactor = Redactor(extra=["iban"])      # Afterwork(redact=["iban"]) does the same
    redactor.task_view(record)               # the operator's JSON of a task, secrets masked
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Callable, Iterable
from typing import Any

from ._errors import AfterworkError, mask_passwords
from ._models import TaskRecord
from ._registry import REGISTRY

# Substrings, case-insensitive: "pass" covers password and passwd, "key" api_key and
# private_key, "auth" authorization, "credential" credentials.
DEFAULT_SECRET_NAMES = ("pass", "pwd", "token", "secret", "key", "auth", "session", "dsn",
                        "credential", "cookie", "signature", "private")
HIDDEN = "[redacted]"
UNKNOWN_POSITIONAL = "[redacted: the function is not known to this process]"
MAX_DEPTH = 32  # deeper values are not walked (hostile payloads), they are shown as a marker
TOO_DEEP = "[nested too deeply to show]"
MIN_MASKED_CHARS = 4  # shorter secret values are not searched for in tracebacks (too common)


class Redactor:
    """Which names are secret, and how a task looks once they are hidden."""

    def __init__(self, extra: Iterable[str] = ()) -> None:
        names = [*DEFAULT_SECRET_NAMES, *(n for n in extra if n)]
        self.names = tuple(dict.fromkeys(n.lower() for n in names))
        self._pattern = re.compile("|".join(re.escape(n) for n in self.names), re.IGNORECASE)

    def is_secret(self, name: object) -> bool:
        return bool(self._pattern.search(str(name)))

    def arguments(self, name: str, payload: str,
                  resolve: Callable[[str], Callable[..., Any] | None] | None = None
                  ) -> tuple[dict[str, Any], list[str]]:
        """({"args": [...], "kwargs": {...}} with secrets hidden, the hidden values as text)."""
        hidden: list[str] = []
        try:
            data = json.loads(payload)
            args, kwargs = list(data.get("a", [])), dict(data.get("k", {}))
        except (ValueError, TypeError, AttributeError, RecursionError):
            return {"args": [], "kwargs": {}, "undecodable": True}, hidden
        names = _positional_names((resolve or find_function)(name))
        shown_args = []
        for i, value in enumerate(args):
            param = names[0][i] if names is not None and i < len(names[0]) else None
            if param is None and names is not None:
                param = names[1]  # extra values of *args take its name
            if names is None:
                shown_args.append(UNKNOWN_POSITIONAL)
                _collect(value, hidden, 0)
            elif self.is_secret(param):
                shown_args.append(HIDDEN)
                _collect(value, hidden, 0)
            else:
                shown_args.append(self._clean(value, hidden, 0))
        shown_kwargs = self._clean(kwargs, hidden, 0)
        return {"args": shown_args, "kwargs": shown_kwargs}, hidden

    def _clean(self, value: Any, hidden: list[str], depth: int) -> Any:
        if depth > MAX_DEPTH:
            _collect(value, hidden, 0)
            return TOO_DEEP
        if isinstance(value, dict):
            out = {}
            for k, v in value.items():
                if self.is_secret(k):
                    _collect(v, hidden, 0)
                    out[str(k)] = HIDDEN
                else:
                    out[str(k)] = self._clean(v, hidden, depth + 1)
            return out
        if isinstance(value, list):
            return [self._clean(v, hidden, depth + 1) for v in value]
        if isinstance(value, str):
            masked = mask_passwords(value)
            if masked != value:
                hidden.append(value)
            return masked
        return value

    def text(self, text: str | None, hidden: Iterable[str]) -> str | None:
        """A traceback or message with the hidden values and URL passwords masked."""
        if text is None:
            return None
        for value in sorted(set(hidden), key=len, reverse=True):  # longest first: no partial leftovers
            if len(value) >= MIN_MASKED_CHARS:
                text = text.replace(value, HIDDEN)
        return mask_passwords(text)

    def last_error(self, record: TaskRecord) -> str | None:
        """The task's last error with its secret argument values and URL passwords masked."""
        return self.text(record.last_error, self.arguments(record.name, record.payload)[1])

    def task_view(self, record: TaskRecord,
                  resolve: Callable[[str], Callable[..., Any] | None] | None = None
                  ) -> dict[str, Any]:
        """Everything about a task an operator sees (`TaskRecord.to_json` plus `arguments`),
        with secrets masked in the arguments, the last error and the history."""
        shown, hidden = self.arguments(record.name, record.payload, resolve)
        data = record.to_json()
        data["arguments"] = shown
        data["last_error"] = self.text(record.last_error, hidden)
        data["history"] = [
            {k: self.text(v, hidden) if isinstance(v, str) else v for k, v in h.items()}
            for h in data["history"]
        ]
        return data

    def list_view(self, record: TaskRecord) -> dict[str, Any]:
        """A task in an operator's list (the API's `GET /tasks`, the CLI's `list --json`):
        `task_view` without the arguments."""
        view = self.task_view(record)
        del view["arguments"]
        return view


def _collect(value: Any, into: list[str], depth: int) -> None:
    """Every scalar inside `value`, as text: what must not appear in a traceback either."""
    if depth > MAX_DEPTH:
        return
    if isinstance(value, dict):
        for v in value.values():
            _collect(v, into, depth + 1)
    elif isinstance(value, list):
        for v in value:
            _collect(v, into, depth + 1)
    elif value is not None and not isinstance(value, bool):
        into.append(str(value))


def find_function(name: str) -> Callable[..., Any] | None:
    """The function stored under `name`, as a runner would find it; None when it may not or
    cannot be loaded here (never imports outside the application's packages)."""
    found = REGISTRY.known(name)
    if found is not None:
        return found
    try:
        return REGISTRY.resolve(name)
    except AfterworkError:
        return None


def _positional_names(func: Callable[..., Any] | None) -> tuple[list[str], str] | None:
    """(names of the positional parameters, the name of *args or ""); None if unknown."""
    if func is None:
        return None
    try:
        signature = inspect.signature(getattr(func, "func", func))
    except (TypeError, ValueError):
        return None
    positional: list[str] = []
    rest = ""
    for p in signature.parameters.values():
        if p.kind is inspect.Parameter.VAR_POSITIONAL:
            rest = p.name
        elif not rest and p.kind in (inspect.Parameter.POSITIONAL_ONLY,
                                     inspect.Parameter.POSITIONAL_OR_KEYWORD):
            positional.append(p.name)
    return positional, rest


DEFAULT = Redactor()


def arguments(name: str, payload: str) -> dict[str, Any]:
    """The arguments of a stored task with the default list of secret names hidden."""
    return DEFAULT.arguments(name, payload)[0]


def task_view(record: TaskRecord, redactor: Redactor | None = None) -> dict[str, Any]:
    """The operator's view of a task (see `Redactor.task_view`): the status API's and the
    dashboard's, and the CLI's `show`."""
    return (redactor or DEFAULT).task_view(record)
