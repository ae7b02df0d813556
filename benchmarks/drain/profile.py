"""Where one drained task's time goes: one `afterwork worker` draining a backlog of no-op tasks,
sampled by py-spy (every thread), the busy samples summed by what they were doing (waiting
for the database server counts as the statement's time).

    python -m benchmarks.drain.profile --store sqlite --tasks 20000
    python -m benchmarks.drain.profile --store pg --tasks 20000 --src ../before/src

Prints the drain rate, the worker's CPU ms per task (all threads; its start-up excluded: the
CPU before the first task finished is subtracted), and the share of the busy samples in each
part: claim SQL, outcome SQL (the statements that record started / succeeded), commits, the
writer's own Python, the runner's Python on the event loop (per task: resolve, decode, start,
finish, the task itself), the start-up's imports, and the rest. Needs `pip install py-spy`.
`--src DIR` profiles the afterwork of another checkout (a change's before and after).
"""

from __future__ import annotations

import argparse
import collections
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks import procs
from benchmarks.drain.compare import count, stop_group, timestamps
from benchmarks.drain.work import PG_URL
from benchmarks.measure import ROOT

# A thread waiting for work (not for the store: psycopg's waits for the server count as the
# SQL's): the event loop's select, a lock, the watchdog's sleep, the LISTEN thread.
IDLE_LEAVES = ("EpollSelector.select ", "Condition.wait ", "Writer._watch ", "Event.wait ")
IDLE_THREADS = ("listen.<locals>.run ",)
# (part, a frame that marks it), the first match from the top of the list wins
PARTS = (
    ("start-up (imports)", ("_find_and_load ",)),
    ("commit", ("_transaction sqlite.py", "Transaction.__exit__", "Connection.commit")),
    ("claim SQL", ("SqlStore.claim ",)),
    ("outcome SQL", ("SqlStore.apply ",)),
    ("writer Python", ("Writer._run ",)),
    ("runner Python (event loop)", ("BaseEventLoop.run_forever ",)),
)


def frame_name(frame: str) -> str:
    """`func (path/to/file.py:12)` -> `func file.py`."""
    func, _, where = frame.partition(" (")
    return f"{func} {where.split(':')[0].rsplit('/', 1)[-1]}"


def parts(raw: Path) -> tuple[collections.Counter[str], int]:
    """Busy samples per part, and the idle ones (a thread waiting: select, a lock, a sleep)."""
    busy: collections.Counter[str] = collections.Counter()
    idle = 0
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        frames = [frame_name(f) for f in stack.split(";")[1:]]
        joined = ";".join(frames) + " "
        if not frames or frames[-1].startswith(IDLE_LEAVES) or any(t in joined for t in IDLE_THREADS):
            idle += int(n)
            continue
        part = next((name for name, marks in PARTS if any(m in joined for m in marks)), "other")
        busy[part] += int(n)
    return busy, idle


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=("sqlite", "pg"), default="sqlite")
    parser.add_argument("--tasks", type=int, default=20000)
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument("--src", type=Path, help="afterwork's src directory to profile instead")
    parser.add_argument("--timeout", type=float, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="afterwork-drain-profile-") as tmp:
        record, raw, log = Path(tmp) / "done.bin", Path(tmp) / "spy.txt", Path(tmp) / "log.txt"
        path = [str(args.src.resolve())] if args.src else []
        env = {**os.environ, "BENCH_RECORD_FILE": str(record), "BENCH_TASK_SECONDS": "0",
               "PYTHONPATH": os.pathsep.join([*path, str(ROOT)]),
               "AFTERWORK_URL": f"sqlite:///{tmp}/drain.db" if args.store == "sqlite" else PG_URL}
        module = "benchmarks.drain.peers.afterwork_store"
        procs.run([module, "prepare"], env, log, ROOT, timeout=120)
        procs.run([module, "enqueue", str(args.tasks)], env, log, ROOT, timeout=900)
        if args.store == "pg":
            from benchmarks.drain.compare import analyze

            analyze()
        spy = Path(sys.executable).with_name("py-spy")
        worker = subprocess.Popen(  # py-spy's child is the worker, in the same process group
            [str(spy), "record", "--threads", "-r", str(args.rate), "-f", "raw", "-o", str(raw),
             "--", sys.executable, "-m", "afterwork", "worker", f"{module}:aw", "--log-level",
             "warning"], cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            cpu_at_first = None
            deadline = time.monotonic() + args.timeout
            while (done := count(record)) < args.tasks and time.monotonic() < deadline:
                if cpu_at_first is None and done:
                    cpu_at_first = procs.group_cpu_seconds(worker.pid)
                time.sleep(0.01)
            cpu = procs.group_cpu_seconds(worker.pid) - (cpu_at_first or 0.0)
        finally:
            stop_group(worker, timeout=30)  # py-spy writes its file when the worker exits
        stamps = timestamps(record)
        if len(stamps) < args.tasks:
            sys.exit(f"not drained: {len(stamps):,} of {args.tasks:,} ran; worker log: {log}")
        rate = (len(stamps) - 1) / (stamps[-1] - stamps[0])
        busy, idle = parts(raw)
    total = sum(busy.values())
    print(f"{args.store}: {rate:,.0f} tasks/s, worker CPU {cpu * 1000 / args.tasks:.3f} ms per "
          f"task (py-spy included); {total:,} busy samples ({idle:,} idle, start-up included)")
    for name, n in busy.most_common():
        print(f"  {name:<28} {100 * n / total:5.1f}%")


if __name__ == "__main__":
    main()
