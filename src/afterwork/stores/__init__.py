"""Stores: one narrow interface (`Store`), chosen by URL."""

from __future__ import annotations

from .._errors import ConfigurationError
from ._base import Store

__all__ = ["Store", "open_store"]


def open_store(url: str) -> Store:
    """The store a URL names: `sqlite:///./file.db`, `memory://` (or `postgresql://...`)."""
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme == "sqlite":
        from .sqlite import SqliteStore

        return SqliteStore(url)
    if scheme in ("postgresql", "postgres"):
        from .postgres import PostgresStore

        return PostgresStore(url)
    if scheme == "memory":
        from .memory import MemoryStore

        return MemoryStore(url)
    raise ConfigurationError(
        f"afterwork cannot use the store URL {url!r}: use sqlite:///./afterwork.db "
        "(the embedded default), postgresql://user@host/db, or memory:// (not durable, for tests)"
    )
