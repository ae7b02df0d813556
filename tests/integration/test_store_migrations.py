"""The one migration runner, on every store: what a schema lacks is applied at open, once, and
stores that open one new database at the same moment do not trip over each other."""

from __future__ import annotations

import threading

from afterwork.stores import Store, open_store
from afterwork.stores._sql import SqlStore
from afterwork.stores._statements import COLUMNS

TICKS = 7  # 007_ticks.sql: adds tick_key and its index


def columns(store: SqlStore) -> list[str]:
    with store._read() as cur:
        cur.execute("SELECT * FROM afterwork_tasks WHERE 1 = 0")
        return sorted(d[0] for d in cur.description)  # type: ignore[attr-defined]


def test_opening_applies_a_migration_the_schema_lacks_and_only_once(store: Store) -> None:
    assert isinstance(store, SqlStore)
    versions = [version for version, _ in store.migrations()]  # numbered, not always dense
    with store._write() as cur:  # as if an older afterwork had made it
        cur.execute("DROP INDEX afterwork_tasks_tick")
        cur.execute("ALTER TABLE afterwork_tasks DROP COLUMN tick_key")
        cur.execute(store._sql("DELETE FROM afterwork_migrations WHERE version = ?"), (TICKS,))
    assert "tick_key" not in columns(store)
    store.close()
    store.open()
    assert columns(store) == sorted(COLUMNS)
    store.close()
    store.open()  # nothing left to apply: a second run would fail on the existing column
    with store._read() as cur:
        cur.execute("SELECT version FROM afterwork_migrations ORDER BY version")
        assert [r[0] for r in cur.fetchall()] == versions


def test_stores_opening_one_new_database_at_once_all_migrate_it(durable_url: str) -> None:
    stores = [open_store(durable_url) for _ in range(4)]
    start = threading.Barrier(len(stores))
    errors: list[BaseException] = []

    def open_one(store: Store) -> None:
        start.wait()
        try:
            store.open()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_one, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    try:
        assert errors == []
        assert all(s.schema_version()[0] == s.schema_version()[1] for s in stores)
    finally:
        for s in stores:
            s.close()
