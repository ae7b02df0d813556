"""One exception root: every error afterwork raises says what happened and what to do."""

from __future__ import annotations

import re

# user:password@ in a URL, and password=... in a URL's query or a libpq connection string.
_URL_PASSWORD = re.compile(r"(?P<keep>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]*:)[^\s@/]*@")
_PARAM_PASSWORD = re.compile(r"(?P<keep>\b(?:password|passwd|pwd)\s*=\s*)(?:'[^']*'|[^\s&;'\"]*)",
                             re.IGNORECASE)
MASK = "***"


def mask_passwords(text: str) -> str:
    """`text` with the password of every URL (`scheme://user:PASSWORD@host`) and every
    `password=...` setting replaced by ***: safe for logs."""
    text = _URL_PASSWORD.sub(lambda m: m["keep"] + MASK + "@", text)
    return _PARAM_PASSWORD.sub(lambda m: m["keep"] + MASK, text)


class AfterworkWarning(UserWarning):
    """A task runs in memory only (it cannot be stored); named once per function."""


class AfterworkError(Exception):
    """Root of every error afterwork raises; catch this to catch them all."""


class ConfigurationError(AfterworkError, ValueError):
    """Afterwork was set up with options it cannot use."""


class NotInstalledError(AfterworkError, RuntimeError):
    """An operation needs `Afterwork(app)` and none is installed in this process."""


class NotStorableError(AfterworkError, TypeError):
    """A task cannot be stored durably (a lambda, a closure, arguments that are not JSON)."""


class TaskTooLargeError(AfterworkError, ValueError):
    """A task's encoded arguments exceed the configured `max_arg_bytes`."""


class StoreError(AfterworkError):
    """The store refused or failed an operation; nothing of that operation was written.

    Its message is for the log (a password in it is masked); clients get `public_detail`,
    which never names the store's file, host, database or credentials.
    """

    public_detail = "the task store refused the operation"

    def __init__(self, *args: object) -> None:
        super().__init__(*(mask_passwords(a) if isinstance(a, str) else a for a in args))


class StoreUnavailableError(StoreError):
    """The store cannot be reached or written right now (locked, read-only, disk full)."""

    public_detail = "the task store is unavailable right now (busy, unreachable or full)"


def public_detail(exc: BaseException) -> str:
    """What a client may read about a store fault: what happened, never where."""
    return getattr(exc, "public_detail", None) or StoreError.public_detail


class StoreReplacedError(StoreUnavailableError):
    """The SQLite file was deleted or replaced under the running app; the write went nowhere.
    afterwork reopens the path (and creates and migrates a new file) at the next write."""


class UnknownTaskError(AfterworkError, LookupError):
    """A stored task names a function this process did not register and may not import."""


class ArgumentsDecodeError(AfterworkError, ValueError):
    """A stored task's arguments no longer decode for its function (code changed?)."""


class Retry(AfterworkError):
    """Raise inside a task to run it again later: `raise Retry(delay=30)` or `Retry(at=epoch)`.

    It counts as an attempt; with no attempts left the task fails with this as its error.
    """

    def __init__(self, reason: str = "the task asked to be retried", *, delay: float | None = None,
                 at: float | None = None) -> None:
        super().__init__(reason)
        self.delay = delay
        self.at = at


class TaskNotFoundError(AfterworkError, LookupError):
    """No task has that id (never stored, or purged)."""


class TaskStateError(AfterworkError, ValueError):
    """The task is not in a state that allows the operation (retry a running task, say)."""


class TaskFailedError(AfterworkError, RuntimeError):
    """Waiting for a task's result: it failed for good. `task_id`, and `error` (its last
    error as recorded, a traceback) say which and why."""

    def __init__(self, task_id: str, name: str, attempts: int, error: str | None) -> None:
        last = (error or "no error recorded").strip().splitlines()[-1:] or ["?"]
        super().__init__(f"task {task_id} ({name}) failed after {attempts} attempt(s): {last[0]}; "
                         "see its history (afterwork show, the dashboard) for the traceback")
        self.task_id = task_id
        self.error = error


class TaskCancelledError(AfterworkError, RuntimeError):
    """Waiting for a task's result: it was cancelled (by an operator, or because a task
    before it in the same response failed), so it has none."""

    def __init__(self, task_id: str, reason: str | None) -> None:
        super().__init__(f"task {task_id} was cancelled ({reason or 'no reason recorded'}): it "
                         "has no result; retry it to run it again")
        self.task_id = task_id


class ResultTimeoutError(AfterworkError, TimeoutError):
    """Waiting for a task's result: it was not final within the timeout (it may still run)."""


class StepError(AfterworkError):
    """A task's recorded steps cannot apply to this run, or a step's result cannot be
    recorded: the task fails without another attempt (another would fail alike, or repeat
    what must not be repeated). An operator's retry runs it again."""


class StepMismatchError(StepError):
    """The task's code calls a step whose name differs from the one recorded at that place by
    an earlier attempt: the code changed between attempts, or the task chose its steps from
    something that is not the same on every run (see docs/steps.md)."""


class StepNotRepeatedError(StepError):
    """An at-most-once step (`once=True`) started on an earlier attempt and its end was never
    recorded: it may have done its work, so it is not run again."""
