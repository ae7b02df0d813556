"""The SQLite file deleted under a running app, under load: the next commit notices that the
path no longer names the file it wrote (503, never a 200 for a task written nowhere), and the
app goes on with a new file at that path. Every task accepted after the deletion is in the
file at the path and runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from ..procs import Server
from .conftest import APP, app_env
from .runs import accepted, executions, overlapping, rows_in, summary, under_fault, wait_until_ended


@pytest.mark.timeout(180)
def test_a_deleted_database_file_gets_503s_never_a_lost_200_and_recovers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "data" / "afterwork.db"
    log = tmp_path / "tasks.jsonl"
    env = app_env(f"sqlite:///{db}", log, lease_seconds=2, store_timeout_seconds=1)
    server = Server(APP, env, tmp_path / "app.log")
    try:
        def delete() -> None:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{db}{suffix}").unlink(missing_ok=True)

        run = under_fault(server.url, delete, lambda: None, path="/job/{n}?seconds=0.05&chain=2",
                          fault_seconds=0.0)  # one moment: recovery counts from it
        after = accepted(run.answers, after=run.fault_at)
        missing = wait_until_ended(log, after, 60)
    finally:
        server.stop()
    stored = rows_in(db, after)  # the file at the path now: what a restart would find
    lost = len(after - stored) + len(missing)
    runs = executions(log)
    with capsys.disabled():
        print(summary("SQLite file deleted under load", accepted=len(after), lost=lost,
                      overlaps=overlapping(runs), unavailable=run.unavailable,
                      recovered_seconds=run.recovered_seconds(),
                      extra=f"counting the tasks accepted after the deletion; "
                            f"{len(accepted(run.answers))} accepted in all"))
    assert run.other_errors == [], run.other_errors
    assert after, "nothing was accepted after the deletion: the app did not recover"
    assert lost == 0
    assert overlapping(runs) == 0
    assert "deleted or replaced" in server.output() or run.unavailable == 0
