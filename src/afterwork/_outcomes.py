"""Small policies of the runner: retry back-off, attempt notes, and who owns a lease."""

from __future__ import annotations

import json
import os
import random
import socket
import uuid

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
