"""Shared fixtures: real SQLite files under tmp_path, and a real PostgreSQL.

PostgreSQL comes from AFTERWORK_TEST_PG_URL (default postgresql://postgres@127.0.0.1:5432/test);
every test gets a schema of its own. Outside CI a missing server skips those tests, saying how
to run them; with CI=true it fails them (CI must exercise PostgreSQL).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import pytest

from afterwork.stores import Store, open_store

PG_URL = os.environ.get("AFTERWORK_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
STORE_KINDS = ["memory", "sqlite", "postgres"]


def _pg_unavailable() -> str | None:
    try:
        import psycopg

        with psycopg.connect(PG_URL, connect_timeout=3):
            return None
    except Exception as exc:
        return str(exc)


@pytest.fixture(scope="session")
def pg_server() -> str:
    problem = _pg_unavailable()
    if problem is not None:
        message = (f"PostgreSQL at {PG_URL} is not reachable ({problem.strip()}); start it "
                   "(pg_ctlcluster ... main start) or set AFTERWORK_TEST_PG_URL")
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return PG_URL


@pytest.fixture
def pg_url(pg_server: str) -> Iterator[str]:
    """A PostgreSQL URL whose tables live in a fresh schema, dropped afterwards."""
    import psycopg

    schema = f"aw_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in pg_server else "?"
    yield f"{pg_server}{sep}options={quote(f'-c search_path={schema}')}"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def pg_database(pg_server: str) -> Iterator[str]:
    """The URL of a fresh database, dropped afterwards (for tests that cut a whole database
    off, or reach it where the `options` start-up parameter is refused)."""
    import psycopg

    name = f"aw_db_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    yield urlunsplit(urlsplit(pg_server)._replace(path=f"/{name}", query=""))
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def store_url(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if kind == "memory":
        return "memory://"
    if kind == "sqlite":
        return f"sqlite:///{tmp_path}/afterwork.db"
    if kind == "postgres":
        return str(request.getfixturevalue("pg_url"))
    raise ValueError(kind)


@pytest.fixture(params=STORE_KINDS)
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store(store_kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Store]:
    s = open_store(store_url(store_kind, tmp_path, request))
    s.open()
    yield s
    s.close()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/afterwork.db"


@pytest.fixture(params=["sqlite", "postgres"])
def durable_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each durable store in turn: the app-level guarantees hold on both."""
    return store_url(str(request.param), tmp_path, request)
