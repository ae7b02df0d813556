"""Drain a backlog side by side: afterwork (SQLite, PostgreSQL) and the peers on their own stores.

    python -m benchmarks.drain.compare                 # 20,000 tasks per case, 3 rounds
    python -m benchmarks.drain.compare --quick         # 5,000 tasks per case, 3 rounds

For each system x task kind (no-op, 10 ms) x worker processes (1, 2), once per round, cases
interleaved: empty the system's store, enqueue the backlog (not timed), start the workers
(worker n pinned to core n mod the core count), wait until every task has run, stop them.
Every system's task appends its finishing time to one file (`work.py`); the rate is the
tasks between the first and the last completion divided by the time between them, so process
start-up is not counted for anyone. Medians over rounds; ratios against the fastest
PostgreSQL peer, per round. Writes a section of docs/benchmarks-more.md and a JSON file in
benchmarks/results/.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks import procs
from benchmarks.drain import lineup, table
from benchmarks.drain.work import PG_URL, RECORD, REDIS_URL
from benchmarks.measure import ROOT

KINDS = {"noop": 0.0, "sleep10": 0.010}  # task kind -> seconds of work per task
STALL_SECONDS = 30.0  # give up on a case when no task has finished for this long


@dataclass(frozen=True)
class Case:
    system: str
    kind: str
    workers: int
    round: int
    tasks: int
    rate: float | None  # tasks/s between the first and the last completion; None: not drained
    ran: int  # completions recorded (may exceed `tasks` where a system re-runs a task)
    first_s: float | None  # workers started -> first completion (start-up)
    enqueue_s: float
    error: str = ""


def timestamps(path: Path) -> list[float]:
    data = path.read_bytes() if path.exists() else b""
    return sorted(v for (v,) in RECORD.iter_unpack(data[: len(data) - len(data) % RECORD.size]))


def count(path: Path) -> int:
    return path.stat().st_size // RECORD.size if path.exists() else 0


def stop_group(proc: subprocess.Popen[bytes], timeout: float = 15) -> None:
    """SIGINT to the worker's own process group (its children too); SIGKILL if it lingers."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)
    with contextlib.suppress(ProcessLookupError):  # children that outlived their parent
        os.killpg(proc.pid, signal.SIGKILL)  # (the group lives while any member does)


def run_case(system: lineup.DrainSystem, kind: str, workers: int, round_no: int, tasks: int,
             concurrency: int, timeout: float, logs: Path) -> Case:
    with tempfile.TemporaryDirectory(prefix=f"afterwork-drain-{system.name}-") as tmp:
        record = Path(tmp) / "done.bin"
        env = {**os.environ, "BENCH_RECORD_FILE": str(record), "BENCH_TASK_SECONDS": str(KINDS[kind]),
               "BENCH_CONCURRENCY": str(concurrency), "BENCH_REDIS_URL": REDIS_URL,
               "BENCH_PG_URL": PG_URL, "PYTHONPATH": str(ROOT)}
        if system.afterwork_url:
            env["AFTERWORK_URL"] = f"sqlite:///{tmp}/drain.db" if system.afterwork_url == "sqlite" else PG_URL
        log = logs / f"{system.name}-{kind}-w{workers}-round{round_no}.log"
        procs.run([system.module, "prepare"], env, log, ROOT, timeout=120)
        started = time.monotonic()
        procs.run([system.module, "enqueue", str(tasks)], env, log, ROOT, timeout=900)
        if system.store == "PostgreSQL":
            analyze()
        enqueue_s = time.monotonic() - started
        cpus = os.cpu_count() or 1
        wall_start = time.time()
        running = [procs.start(system.worker_argv(concurrency), n % cpus, env, log, ROOT)
                   for n in range(workers)]
        try:
            done, error = wait_drained(record, tasks, running, timeout)
        finally:
            for proc in running:
                stop_group(proc)
        stamps = timestamps(record)
        rate = None
        if done and len(stamps) >= tasks and stamps[tasks - 1] > stamps[0]:
            rate = (tasks - 1) / (stamps[tasks - 1] - stamps[0])
        return Case(system.name, kind, workers, round_no, tasks, rate, len(stamps),
                    stamps[0] - wall_start if stamps else None, enqueue_s, error)


def analyze() -> None:
    """ANALYZE the drain database: tables emptied and refilled a moment ago have no planner
    statistics yet (autovacuum would take up to a minute to gather them), and with none
    PostgreSQL can pick a plan that sorts the whole backlog on every claim (Procrastinate's
    claim took about 19 ms with 5,000 jobs here before an ANALYZE). A running deployment has
    them, so every PostgreSQL system gets them, the same way."""
    import asyncio

    import asyncpg  # type: ignore[import-untyped]

    async def run() -> None:
        conn = await asyncpg.connect(PG_URL)
        try:
            await conn.execute("ANALYZE")
        finally:
            await conn.close()

    asyncio.run(run())


def wait_drained(record: Path, tasks: int, running: list[subprocess.Popen[bytes]],
                 timeout: float) -> tuple[bool, str]:
    started = last_change = time.monotonic()
    last = 0
    while (seen := count(record)) < tasks:
        now = time.monotonic()
        if seen != last:
            last, last_change = seen, now
        if now - started > timeout:
            return False, f"{seen:,} of {tasks:,} ran within {timeout:g} s"
        if now - last_change > STALL_SECONDS:
            return False, f"stalled at {seen:,} of {tasks:,} (nothing ran for {STALL_SECONDS:g} s)"
        if any(p.poll() is not None for p in running):
            return False, f"a worker exited ({[p.returncode for p in running]}) at {seen:,} of {tasks:,}"
        time.sleep(0.02)
    time.sleep(0.2)  # completions a re-run may still add, for the `ran` count
    return True, ""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--quick", action="store_true", help="5,000 tasks per case (unless --tasks says otherwise)")
    add("--tasks", type=int, help="backlog of no-op tasks per case (default 20,000; --quick 5,000)")
    add("--slow-tasks", type=int, help="backlog of 10 ms tasks per case (default: as --tasks)")
    add("--rounds", type=int, default=3, help="rounds, cases interleaved in each (default 3)")
    add("--workers", default="1,2", help="worker process counts (default 1,2)")
    add("--kinds", default="noop,sleep10", help="task kinds: noop, sleep10 (default both)")
    add("--concurrency", type=int, default=64, help="tasks at once per worker process (default 64)")
    add("--systems", help="comma-separated names (default all): " + ", ".join(s.name for s in lineup.SYSTEMS))
    add("--timeout", type=float, default=300, help="max seconds per case (default 300)")
    add("--doc", type=Path, default=ROOT / "docs" / "benchmarks-more.md",
        help="markdown file whose drain section is (re)written; '-' prints it only")
    add("--results-dir", type=Path, default=ROOT / "benchmarks" / "results")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    tasks = args.tasks or (5000 if args.quick else 20000)
    counts = {"noop": tasks, "sleep10": args.slow_tasks or tasks}
    kinds = args.kinds.split(",")
    workers = [int(w) for w in args.workers.split(",")]
    systems = []
    for system in lineup.select(args.systems.split(",") if args.systems else None):
        if why := system.unavailable():
            print(f"skip {system.name}: {why}", flush=True)
        else:
            systems.append(system)
    stamp = datetime.now(timezone.utc)
    logs = args.results_dir / f"drain-logs-{stamp:%Y%m%d-%H%M%S}"
    logs.mkdir(parents=True, exist_ok=True)
    cases: list[Case] = []
    load_before = os.getloadavg()[0]
    for round_no in range(1, args.rounds + 1):
        for system in systems:
            for kind in kinds:
                for n in workers:
                    try:
                        case = run_case(system, kind, n, round_no, counts[kind], args.concurrency,
                                        args.timeout, logs)
                    except Exception as exc:  # one failed case is reported, the others go on
                        traceback.print_exc()
                        case = Case(system.name, kind, n, round_no, counts[kind], None, 0, None, 0.0,
                                    f"{type(exc).__name__}: {exc}")
                    cases.append(case)
                    rate = f"{case.rate:8,.0f} tasks/s" if case.rate else f"FAILED {case.error}"
                    print(f"round {round_no} {system.name:<17} {kind:<8} workers={n} {rate} "
                          f"(ran {case.ran:,}, enqueue {case.enqueue_s:.1f} s)", flush=True)
    meta = table.meta(stamp, shlex.join(["python", "-m", "benchmarks.drain.compare", *sys.argv[1:]]),
                      args.rounds, counts, args.concurrency, (load_before, os.getloadavg()[0]))
    section = table.markdown(cases, systems, kinds, workers, meta)
    out = args.results_dir / f"drain-{stamp:%Y%m%d-%H%M%S}.json"
    out.write_text(table.to_json(meta, [asdict(c) for c in cases]))
    print("\n" + section)
    if str(args.doc) != "-":
        table.write_section(args.doc, section)
        print(f"wrote the drain section of {args.doc} and {out}")


if __name__ == "__main__":
    main()
