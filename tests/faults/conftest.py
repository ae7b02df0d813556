"""Fixtures of the fault suite: a store URL per durable store, the tasks' log, the app's env."""

from __future__ import annotations

from pathlib import Path

import pytest

from ..conftest import store_url

APP = "tests.faults.fault_app:app"


@pytest.fixture(params=["sqlite", "postgres"])
def fault_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return store_url(str(request.param), tmp_path, request)


def app_env(url: str, log: Path, **settings: object) -> dict[str, str]:
    """The fault app's environment: FAULT_LEASE_SECONDS=..., FAULT_RUN_IN_APP=0, ..."""
    env = {"AFTERWORK_URL": url, "FAULT_LOG": str(log)}
    env.update({f"FAULT_{k.upper()}": str(v) for k, v in settings.items()})
    return env
