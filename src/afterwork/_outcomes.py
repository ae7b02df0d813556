"""Small policies of the runner: retry back-off, attempt notes, and who owns a lease."""

from __future__ import annotations

import json
import os
import random
import socket
import traceback
import uuid

from ._errors import Retry
from ._registry import TaskOptions

BACKOFF_BASE_SECONDS = 1.0
BACKOFF_MAX_SECONDS = 300.0


def backoff_seconds(attempt: int, options: TaskOptions | None = None) -> float:
    """Exponential back-off, jittered in its upper half: ~1 s, 2 s, 4 s ... capped at 5 min
    (or the task's own `backoff_seconds` / `backoff_max_seconds`)."""
    base = (options and options.backoff_seconds) or BACKOFF_BASE_SECONDS
    cap = (options and options.backoff_max_seconds) or BACKOFF_MAX_SECONDS
    ceiling = min(cap, base * 2 ** (attempt - 1))
    return float(ceiling * (0.5 + random.random() / 2))


def attempt_note(**fields: object) -> str:
    """One line of a task's history: an attempt that did not succeed."""
    return json.dumps(fields, separators=(",", ":")) + "\n"


def new_owner() -> str:
    """A runner's name in leases: host, pid and a nonce (a restarted pid is a new owner)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def owner_is_dead(owner: str) -> bool:
    """True only when the owner ran on this host and its process is gone."""
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False  # another machine's runner: only its lease expiry tells
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def failure(exc: BaseException, attempt: int, timeout_seconds: float | None, started: float,
            now: float, options: TaskOptions | None) -> tuple[str, str, float]:
    """What a failed attempt records: (the error shown, the history note, when a retry would
    start: `Retry(at=|delay=)` or the back-off)."""
    timed_out = isinstance(exc, TimeoutError)
    if timed_out:
        error = f"timed out after {timeout_seconds}s (attempt {attempt})"
    else:
        error = "".join(traceback.format_exception(exc)).strip()
    outcome = "timeout" if timed_out else "retry" if isinstance(exc, Retry) else "error"
    note = attempt_note(attempt=attempt, started_at=started, finished_at=now, outcome=outcome,
                        error=f"{type(exc).__name__}: {exc}"[:500])
    if isinstance(exc, Retry) and (exc.at is not None or exc.delay is not None):
        retry_at = exc.at if exc.at is not None else now + (exc.delay or 0.0)
    else:
        retry_at = now + backoff_seconds(attempt, options)
    return error, note, retry_at
