"""A full disk under load: the SQLite file on a tmpfs of its own, filled up by the test.
Requests get 503s while the disk is full (never a 200 for a task not written), the runner's
outcomes wait and are retried, and once space is freed everything accepted runs.

The disk has room for everything the load can store, twice over: once the filler is gone,
the load must not fill the disk again by itself (with every write refused, tasks waiting
in the store for a claim, or for the success of the task before them, would never run, and
rightly so). Each task's row (a 2 KB argument) takes a 4 KB page of its own; the -wal holds
about 4 MB, and more after the fault: the outcomes written meanwhile go in as one
transaction, a page per task, that has to fit in the -wal before it can be checkpointed.

Needs `mount` (CI runs as root). Outside CI, a machine where mounting is not permitted skips.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
from collections import Counter
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from ..procs import Server
from .conftest import APP, app_env
from .runs import accepted, executions, overlapping, rows_in, summary, under_fault, wait_until_ended

# The most requests sent: enough to go on after the fault, with 503s coming back fast
# (about 650 a second) while the disk is full.
REQUESTS = 8000
CHAIN, PAD = 2, 2000  # tasks per request, bytes of argument per task
PAGE_BYTES = 4096
# All the rows the load can store, as much again in the -wal, and 16 MB to spare: 141 MB.
DISK_BYTES = 2 * REQUESTS * CHAIN * PAGE_BYTES + (16 << 20)
LEFT_FREE_BYTES = 200 * 1024  # what the filler leaves: a few dozen requests' worth


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK_BYTES}", "tmpfs", str(mount)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        reason = f"cannot mount a tmpfs here ({done.stderr.strip()}): run as root"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.mark.timeout(180)
def test_a_full_disk_gets_503s_loses_nothing_and_recovers_when_space_is_freed(
    small_disk: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = small_disk / "afterwork.db"
    log = tmp_path / "tasks.jsonl"
    filler = small_disk / "filler"
    # A small local backlog: many tasks go through the store (claimed; the second of a
    # chain after the first one's success is written), not only straight to the runner.
    env = app_env(f"sqlite:///{db}", log, lease_seconds=2, store_timeout_seconds=1,
                  local_backlog=40)
    server = Server(APP, env, tmp_path / "app.log")
    filled: list[int] = []
    try:
        def fill() -> None:
            _fill(filler, _free_bytes(small_disk) - LEFT_FREE_BYTES)
            filled.append(filler.stat().st_size)

        run = under_fault(server.url, fill, lambda: filler.unlink(), fault_seconds=4.0,
                          path=f"/job/{{n}}?seconds=0.05&chain={CHAIN}&pad={PAD}", clients=4,
                          requests=REQUESTS)
        ids = accepted(run.answers)
        missing = wait_until_ended(log, ids, 60)
        free_at_end = _free_bytes(small_disk)
        state = f"filler {filled} bytes; at the end: {_disk(small_disk)}"
    finally:
        server.stop()
    if missing:
        state += f"; the tasks that did not run: {_rows(db, missing)}"
    lost = len(missing) + len(ids - rows_in(db, ids))
    runs = executions(log)
    with capsys.disabled():
        print(summary(f"disk full ({DISK_BYTES >> 20} MB tmpfs)", accepted=len(ids), lost=lost,
                      overlaps=overlapping(runs), unavailable=run.unavailable,
                      duplicates=len(runs) - len(ids), recovered_seconds=run.recovered_seconds(),
                      extra=state))
    assert run.unavailable > 0, "the disk never filled: the test proved nothing"
    assert run.other_errors == [], run.other_errors
    assert any(a.sent >= run.cleared_at for a in run.answers), (
        f"all {REQUESTS} requests were sent before space was freed: raise REQUESTS")
    assert run.recovered_seconds() is not None, "no request succeeded after space was freed"
    assert free_at_end > LEFT_FREE_BYTES, f"the load filled the disk again: make it larger ({state})"
    assert lost == 0, state
    assert overlapping(runs) == 0


def _free_bytes(disk: Path) -> int:
    found = os.statvfs(disk)
    return found.f_bavail * found.f_frsize


def _fill(filler: Path, size: int) -> None:
    """Write up to `size` bytes, in chunks: the app writes meanwhile, and a disk that fills
    before the filler is done is what the test wants, not an error."""
    chunk = b"\0" * (1 << 20)
    with filler.open("wb", buffering=0) as out:
        try:
            while size > 0:
                size -= out.write(chunk[:size]) or 0
        except OSError:  # no space left: full already
            pass


def _disk(disk: Path) -> str:
    files = {p.name: p.stat().st_size for p in disk.iterdir()}
    return f"free {_free_bytes(disk)} bytes, files {files}"


def _rows(db: Path, ids: set[str]) -> str:
    """How many of these tasks' rows are in each (state, waiting on another, leased, attempts)."""
    with closing(sqlite3.connect(db)) as conn:
        rows = conn.execute("SELECT id, state, waiting_on IS NOT NULL, lease_owner IS NOT NULL, "
                            "attempts FROM afterwork_tasks").fetchall()
    kinds = Counter(tuple(r[1:]) for r in rows if r[0] in ids)
    return f"by (state, waiting on another, leased, attempts): {dict(kinds)}"
