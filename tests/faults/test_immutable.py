"""Immutable files under load (`chattr +i`, root only): the database file and its -wal made
immutable while the app writes. Writes fail (the kernel refuses them: EPERM), requests get
503s, nothing accepted is lost, and writing resumes once the flag is removed.

Not made here: an immutable -shm. SQLite maps the -shm into memory and writes it through the
mapping; the kernel answers such a write with SIGBUS, which kills the process at once (like
kill -9: the leases decide, nothing accepted is lost, but the process is gone). Nothing in
afterwork can catch that; keep the flag off afterwork's files.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from ..procs import Server
from .conftest import APP, app_env
from .runs import accepted, executions, overlapping, rows_in, summary, under_fault, wait_until_ended


def _chattr(flag: str, *paths: Path) -> None:
    subprocess.run(["chattr", flag, *map(str, paths)], check=True, capture_output=True)


@pytest.mark.timeout(180)
def test_immutable_database_files_get_503s_lose_nothing_and_recover(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "afterwork.db"
    wal = Path(f"{db}-wal")
    log = tmp_path / "tasks.jsonl"
    env = app_env(f"sqlite:///{db}", log, lease_seconds=2, store_timeout_seconds=1)
    server = Server(APP, env, tmp_path / "app.log")
    try:
        probe = tmp_path / "probe"
        probe.touch()
        if subprocess.run(["chattr", "+i", str(probe)], capture_output=True).returncode != 0:
            reason = "chattr +i is not permitted here (root on ext4/xfs/btrfs needed)"
            if os.environ.get("CI") == "true":
                pytest.fail(reason)
            pytest.skip(reason)
        _chattr("-i", probe)
        try:
            run = under_fault(server.url, lambda: _chattr("+i", db, wal),
                              lambda: _chattr("-i", db, wal), fault_seconds=3.0,
                              path="/job/{n}?seconds=0.05&chain=2")
        finally:
            _chattr("-i", db, wal)  # whatever happened: never leave the flag behind
        ids = accepted(run.answers)
        missing = wait_until_ended(log, ids, 60)
    finally:
        server.stop()
    lost = len(missing) + len(ids - rows_in(db, ids))
    runs = executions(log)
    with capsys.disabled():
        print(summary("database file and -wal immutable", accepted=len(ids), lost=lost,
                      overlaps=overlapping(runs), unavailable=run.unavailable,
                      duplicates=len(runs) - len(ids), recovered_seconds=run.recovered_seconds()))
    assert run.unavailable > 0, "no write was refused: the test proved nothing"
    assert run.other_errors == [], run.other_errors
    assert run.recovered_seconds() is not None, "no request succeeded after the flag was removed"
    assert lost == 0
    assert overlapping(runs) == 0
