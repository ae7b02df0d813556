"""Settings: every option of `Afterwork(...)`, validated once, frozen.

Each part reads the one `Settings` object it is handed; nothing changes it. Code that needs
other values (the `afterwork worker` command's flags, a test helper) builds a new object with
`settings.replace(...)` before the store opens (`Afterwork.configure`).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from ._errors import ConfigurationError

DEFAULT_URL = "sqlite:///./afterwork.db"
STORE_TIMEOUT_SECONDS = 5.0  # the default bound on a wait for the store

_POSITIVE = ("concurrency", "sync_threads", "max_attempts", "max_arg_bytes", "lease_seconds",
             "poll_seconds", "max_streams", "api_threads", "store_timeout_seconds", "local_backlog")
_POSITIVE_OR_NONE = ("keep_results_seconds",)


@dataclass(frozen=True, slots=True)
class Settings:
    """The options of `Afterwork(...)`, each with its default (the README's options table)."""

    url: str = DEFAULT_URL
    run_in_app: bool = True
    strict: bool = False
    concurrency: int = 32
    sync_threads: int = 8
    max_attempts: int = 3
    timeout_seconds: float | None = None
    lease_seconds: float = 30.0
    poll_seconds: float = 1.0
    grace_seconds: float = 10.0
    store_timeout_seconds: float = STORE_TIMEOUT_SECONDS
    max_arg_bytes: int = 256 * 1024
    local_backlog: int = 1000
    api_prefix: str = "/afterwork/api"
    packages: tuple[str, ...] = ()
    queue_limits: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    run_queues: tuple[str, ...] | None = None
    dashboard: bool = False
    dashboard_token: str | None = None
    dashboard_auth: Callable[..., Any] | None = None
    dashboard_prefix: str = "/afterwork"
    metrics: bool = False
    tracing: bool = False
    inline_in_tests: bool = True
    redact: tuple[str, ...] = ()
    max_streams: int = 500
    api_threads: int = 4
    freeze_gc: bool = True
    keep_results_seconds: float | None = None  # None: results stay as long as their task
    runner_kind: str = "app"  # "worker" in `afterwork worker`: shown with each runner

    def __post_init__(self) -> None:
        for label in _POSITIVE:
            value = getattr(self, label)
            if value <= 0:
                raise ConfigurationError(f"Afterwork({label}={value!r}): it must be above 0")
        for label in _POSITIVE_OR_NONE:
            value = getattr(self, label)
            if value is not None and value <= 0:
                raise ConfigurationError(f"Afterwork({label}={value!r}): give seconds above 0, "
                                         "or None to keep results as long as their task")
        # Normalised forms, so that every reader sees one shape.
        set_ = object.__setattr__
        set_(self, "packages", tuple(self.packages))
        set_(self, "redact", tuple(self.redact))
        set_(self, "queue_limits", MappingProxyType(dict(self.queue_limits)))
        if self.run_queues is not None:
            set_(self, "run_queues", tuple(self.run_queues))
        set_(self, "dashboard_prefix", self.dashboard_prefix.rstrip("/"))
        if self.dashboard and not (self.dashboard_token or self.dashboard_auth):
            raise ConfigurationError(
                "Afterwork(dashboard=True) needs dashboard_auth= (your check: a callable taking "
                "the request, returning True to allow) or dashboard_token= (or the "
                "AFTERWORK_DASHBOARD_TOKEN environment variable): it lets operators retry and "
                "cancel tasks and read their arguments"
            )
        if self.metrics and not (self.dashboard_token or self.dashboard_auth):
            raise ConfigurationError(
                "Afterwork(metrics=True) needs dashboard_auth= or dashboard_token= (or the "
                "AFTERWORK_DASHBOARD_TOKEN environment variable): the scraper sends the token "
                "as a Bearer header, or your check decides"
            )

    @classmethod
    def from_options(cls, url: str | None = None, **options: Any) -> Settings:
        """The settings of `Afterwork(app, url, **options)`, with the environment's defaults
        (`AFTERWORK_URL`, `AFTERWORK_DASHBOARD_TOKEN`) where an option was not given."""
        options.setdefault("dashboard_token", None)
        options["dashboard_token"] = (options["dashboard_token"]
                                      or os.environ.get("AFTERWORK_DASHBOARD_TOKEN"))
        return cls(url=url or os.environ.get("AFTERWORK_URL") or DEFAULT_URL, **options)

    def replace(self, **changes: Any) -> Settings:
        """A new, validated object with these changes (this one stays as it is)."""
        return dataclasses.replace(self, **changes)
