"""What the CLI asks of every store: is it there (creating nothing), and which ids start so."""

from __future__ import annotations

import time
from pathlib import Path

from afterwork._models import Changes, TaskRecord, TaskState
from afterwork.stores import Store, open_store


def test_ids_starting_with_is_exact_and_bounded(store: Store) -> None:
    now = time.time()
    ids = ["ab12-x", "ab12-y", "ab13-z", "AB12-w", "a%_-v"]
    store.apply(Changes(inserts=[TaskRecord(id=i, name="m:f", payload='{"a":[],"k":{}}',
                                            state=TaskState.QUEUED, run_at=now, created_at=now)
                                 for i in ids]))
    assert store.ids_starting_with("ab12", 10) == ["ab12-x", "ab12-y"]  # case-sensitive
    assert store.ids_starting_with("ab1", 2) == ["ab12-x", "ab12-y"]
    assert store.ids_starting_with("a%", 10) == ["a%_-v"]  # no LIKE wildcards
    assert store.ids_starting_with("zz", 10) == []
    assert store.exists()


def test_a_missing_sqlite_store_is_not_created_by_asking(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/sub/aw.db")
    assert not store.exists()
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "other.db").write_bytes(b"")  # a file, but no afterwork tables in it
    assert not open_store(f"sqlite:///{tmp_path}/other.db").exists()


def test_a_postgres_schema_without_afterwork_tables_is_not_a_store(pg_url: str) -> None:
    store = open_store(pg_url)
    try:
        assert not store.exists()
        store.open()
        assert store.exists()
    finally:
        store.close()
