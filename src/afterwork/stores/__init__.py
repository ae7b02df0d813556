"""Stores: one narrow interface (`Store`), chosen by URL, served by one SQL implementation
(`_sql.SqlStore`) with a module per dialect: SQLite (a file, or `memory://`) and PostgreSQL."""

from __future__ import annotations

from .._errors import ConfigurationError
from ._base import Store
from ._rows import insert_task_statement

__all__ = ["Store", "insert_task_statement", "open_store"]


def open_store(url: str) -> Store:
    """The store a URL names: `sqlite:///./file.db`, `memory://` (SQLite in memory, a new
    database for each store object), or `postgresql://...`."""
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme in ("sqlite", "memory"):
        from .sqlite import SqliteStore

        return SqliteStore(url)
    if scheme in ("postgresql", "postgres"):
        from .postgres import PostgresStore

        return PostgresStore(url)
    raise ConfigurationError(
        f"afterwork cannot use the store URL {url!r}: use sqlite:///./afterwork.db "
        "(the embedded default), postgresql://user@host/db, or memory:// (SQLite in memory: "
        "not durable, for tests)"
    )
