"""What a task returned, as stored with its outcome, and as given back to whoever waits
(`_waiting`).

A success that returned None stores nothing (no row, no column: the runner's writes are as
they were). Anything else goes through the function's return annotation, by the codec of the
arguments (`_codec.encode_result`), into the outputs table, with the task's `public_result`
flag beside it (the public status endpoint shows it only then). A value that has no JSON form
is recorded as not storable, with a warning: the task still succeeded.
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Callable
from typing import Any

from . import _codec
from ._errors import (
    AfterworkError,
    AfterworkWarning,
    NotStorableError,
    TaskCancelledError,
    TaskFailedError,
)
from ._models import TaskRecord, TaskState
from ._registry import REGISTRY, Task

log = logging.getLogger("afterwork")


def stored_result(func: Any, record: TaskRecord, value: Any) -> str:
    """The JSON stored for what `func` returned (not None): `{"value": ..., "public": ...}`,
    or `{"unstorable": why, ...}` with a warning naming the task."""
    public = bool(isinstance(func, Task) and func.task_options.public_result)
    try:
        return json.dumps({"value": _codec.encode_result(func, value), "public": public},
                          separators=(",", ":"), allow_nan=False)
    except (NotStorableError, ValueError, TypeError) as exc:
        why = str(exc)
    message = (f"afterwork: task {record.name} ({record.id}) succeeded, but the value it "
               f"returned cannot be stored: {why}; its result is recorded as not storable")
    log.warning("%s", message)
    warnings.warn(message, AfterworkWarning, stacklevel=2)
    return json.dumps({"unstorable": why, "public": public}, separators=(",", ":"))


def outcome(record: TaskRecord) -> Any:
    """A final task's result, rebuilt through its function's return annotation when this
    process knows the function (else as stored, JSON); a failed or cancelled task raises."""
    if record.state is TaskState.FAILED:
        raise TaskFailedError(record.id, record.name, record.attempts, record.last_error)
    if record.state is TaskState.CANCELLED:
        raise TaskCancelledError(record.id, record.last_error)
    stored = record.stored_result()
    if stored is None:
        return None
    if "unstorable" in stored:
        raise NotStorableError(f"task {record.id} ({record.name}) succeeded, but what it "
                               f"returned could not be stored: {stored['unstorable']}")
    try:
        func: Callable[..., Any] | None = REGISTRY.resolve(record.name)
    except AfterworkError:
        func = None  # not this process's function: the value as stored
    return _codec.decode_result(func, stored.get("value"))
