"""Schema migrations: the numbered scripts in migrations/, applied by one runner for every SQL
store. A dialect supplies only what differs: its column types (`dialect_sql`), how a script
splits into statements, what it locks so that one process migrates at a time, and what it
checks once the schema is current."""

from __future__ import annotations

import importlib.resources
import time
from collections.abc import Iterable

from ._dbapi import Cursor

CREATE_MIGRATIONS_TABLE = ("CREATE TABLE IF NOT EXISTS afterwork_migrations "
                           "(version INTEGER PRIMARY KEY, applied_at REAL NOT NULL)")
RECORD_VERSION = "INSERT INTO afterwork_migrations VALUES (?, ?)"


class SchemaMigrations:
    """What a SQL store migrates with; `migrate` is the runner, the rest are the dialect's
    hooks (the defaults fit a server that takes a whole script in one call)."""

    def migrations(self) -> list[tuple[int, str]]:
        """(version, SQL) for every file in migrations/, in this store's dialect."""
        folder = importlib.resources.files(__package__).joinpath("migrations")
        found = []
        for entry in folder.iterdir():
            if entry.name.endswith(".sql"):
                found.append((int(entry.name.split("_", 1)[0]), self.dialect_sql(entry.read_text())))
        return sorted(found)

    def dialect_sql(self, script: str) -> str:
        """A migration script (written in what the dialects share) in this dialect."""
        return script

    def _sql(self, statement: str) -> str:
        """A statement with `?` marks in this dialect (SqlStore's translation)."""
        return statement

    def _script_statements(self, script: str) -> Iterable[str]:
        """The statements to execute one by one for a migration script."""
        return (script,)

    def _lock_for_migration(self, cur: Cursor) -> None:
        """Inside the migration's transaction, before it reads which versions are applied:
        make every other process that migrates wait for this one."""

    def _after_migration(self, cur: Cursor) -> None:
        """Inside the migration's transaction, once the schema is current."""

    def migrate(self, cur: Cursor) -> None:
        """Bring the schema to the newest version, in the transaction `cur` is in: create the
        version table, apply each script not applied yet and record its version."""
        self._lock_for_migration(cur)
        cur.execute(self.dialect_sql(CREATE_MIGRATIONS_TABLE))
        cur.execute("SELECT version FROM afterwork_migrations")
        done = {row[0] for row in cur.fetchall()}
        for version, script in self.migrations():
            if version in done:
                continue
            for statement in self._script_statements(script):
                cur.execute(statement)
            cur.execute(self._sql(RECORD_VERSION), (version, time.time()))
        self._after_migration(cur)
