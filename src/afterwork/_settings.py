"""One frozen, validated settings object that every part of afterwork reads.

`Afterwork(app, **options)` builds it once; nothing changes it afterwards. A worker process or
a test helper that needs other values builds its own with `replace()` before anything starts.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ._errors import ConfigurationError

DEFAULT_URL = "sqlite:///./afterwork.db"
_POSITIVE = ("concurrency", "sync_threads", "max_attempts", "max_arg_bytes", "lease_seconds",
             "poll_seconds", "max_streams", "api_threads", "store_timeout_seconds")


@dataclass(frozen=True, slots=True)
class Settings:
    """Every option of `Afterwork`, documented there."""

    url: str = DEFAULT_URL
    run_in_app: bool = True
    runner_kind: str = "app"  # "worker" in `afterwork worker` (shown to operators)
    strict: bool = False
    concurrency: int = 32
    sync_threads: int = 8
    max_attempts: int = 3
    timeout_seconds: float | None = None
    lease_seconds: float = 30.0
    poll_seconds: float = 1.0
    grace_seconds: float = 10.0
    store_timeout_seconds: float = 5.0
    max_arg_bytes: int = 256 * 1024
    local_backlog: int = 1000
    api_prefix: str = "/afterwork/api"
    packages: tuple[str, ...] = ()
    queue_limits: Mapping[str, int] = field(default_factory=dict)
    run_queues: tuple[str, ...] | None = None
    dashboard: bool = False
    dashboard_token: str | None = None
    dashboard_auth: Callable[[Any], Any] | None = None
    dashboard_prefix: str = "/afterwork"
    metrics: bool = False
    tracing: bool = False
    inline_in_tests: bool = True
    redact: tuple[str, ...] = ()
    max_streams: int = 500
    api_threads: int = 4

    def __post_init__(self) -> None:
        for label in _POSITIVE:
            value = getattr(self, label)
            if value <= 0:
                raise ConfigurationError(f"Afterwork({label}={value!r}): it must be above 0")
        guarded = "dashboard=True" if self.dashboard else "metrics=True" if self.metrics else None
        if guarded and not (self.dashboard_token or self.dashboard_auth):
            raise ConfigurationError(
                f"Afterwork({guarded}) needs dashboard_auth= (your check: a callable taking the "
                "request, returning True to allow) or dashboard_token= (or the "
                "AFTERWORK_DASHBOARD_TOKEN environment variable): operators retry and cancel "
                "tasks and read their arguments there, and a scraper sends the token as a "
                "Bearer header"
            )

    @classmethod
    def build(cls, url: str | None = None, **options: Any) -> Settings:
        """From `Afterwork`'s arguments and the environment (AFTERWORK_URL,
        AFTERWORK_DASHBOARD_TOKEN); collections become immutable."""
        options["url"] = url or os.environ.get("AFTERWORK_URL") or DEFAULT_URL
        options["dashboard_token"] = (options.get("dashboard_token")
                                      or os.environ.get("AFTERWORK_DASHBOARD_TOKEN"))
        options["dashboard_prefix"] = str(options.get("dashboard_prefix", "/afterwork")).rstrip("/")
        for name in ("packages", "redact"):
            options[name] = tuple(options.get(name) or ())
        if options.get("run_queues") is not None:
            options["run_queues"] = tuple(options["run_queues"])
        options["queue_limits"] = dict(options.get("queue_limits") or {})
        return cls(**options)

    def replace(self, **changes: Any) -> Settings:
        """A copy with `changes`, validated again (for a worker process, a test helper)."""
        return dataclasses.replace(self, **changes)

    def mounted_prefixes(self) -> list[str]:
        """The paths the status API, the dashboard and the metrics are served under."""
        found = [self.api_prefix.rstrip("/")] if self.api_prefix else []
        if self.dashboard or self.metrics:
            found.append(self.dashboard_prefix)
        return found
