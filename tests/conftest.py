"""Shared fixtures: real SQLite files under tmp_path; PostgreSQL when AFTERWORK_TEST_PG_URL is set."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from afterwork.stores import Store, open_store

STORE_KINDS = ["memory", "sqlite"]


def store_url(kind: str, tmp_path: os.PathLike[str]) -> str:
    if kind == "memory":
        return "memory://"
    if kind == "sqlite":
        return f"sqlite:///{tmp_path}/afterwork.db"
    raise ValueError(kind)


@pytest.fixture(params=STORE_KINDS)
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store(store_kind: str, tmp_path: os.PathLike[str]) -> Iterator[Store]:
    s = open_store(store_url(store_kind, tmp_path))
    s.open()
    yield s
    s.close()


@pytest.fixture
def sqlite_url(tmp_path: os.PathLike[str]) -> str:
    return f"sqlite:///{tmp_path}/afterwork.db"
