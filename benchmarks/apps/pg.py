"""PostgreSQL set-up shared by the PostgreSQL peers."""

from urllib.parse import urlsplit, urlunsplit

import asyncpg  # type: ignore[import-untyped]


async def ensure_database(url: str) -> None:
    """Create the database ``url`` names if it does not exist (via the ``postgres`` database)."""
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = await asyncpg.connect(urlunsplit(parts._replace(path="/postgres")))
    try:
        if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
