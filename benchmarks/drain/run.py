"""How fast runners drain a backlog: tasks/s for 1 and 2 `afterwork worker` processes, no-op
and 10 ms sleeping tasks, on SQLite and PostgreSQL; and the in-app runner's enqueue-to-start
latency at a moderate request rate.

    python -m benchmarks.drain.run --tasks 20000 --rounds 3

Each measurement: a fresh store, a backlog of N tasks stored first (no runner running), then
the workers start, and the clock runs from the first success (start-up excluded) until every
task has succeeded (counted in the store).
One worker is pinned to core 0; with two, the second takes core 1 (the machine has two).
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import closing
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PG = "postgresql://postgres@127.0.0.1:5432/test"
ENQUEUE_CHUNK = 2000


def enqueue(url: str, task: str, count: int) -> None:
    code = f"""
import os, sys
sys.path.insert(0, {str(ROOT)!r})
from benchmarks.drain import tasks
from afterwork._models import Changes
from afterwork._enqueue import record_for
import time
tasks.aw.open_storage()
fn = getattr(tasks, {task!r})
for start in range(0, {count}, {ENQUEUE_CHUNK}):
    rows = [record_for(tasks.aw.planner.plan(fn, (), {{}}), time.time())
            for _ in range(min({ENQUEUE_CHUNK}, {count} - start))]
    tasks.aw.store.apply(Changes(inserts=rows))
tasks.aw.store.close()
"""
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT,
                   env={**os.environ, "AFTERWORK_URL": url}, timeout=300)


def succeeded(url: str) -> int:
    sql = "SELECT COUNT(*) FROM afterwork_tasks WHERE state = 'succeeded'"
    if url.startswith("sqlite"):
        with closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as conn:
            return int(conn.execute(sql).fetchone()[0])
    import psycopg

    with psycopg.connect(url) as conn:
        return int(conn.execute(sql).fetchone()[0])  # type: ignore[index]


def pg_schema_url() -> tuple[str, str]:
    import psycopg

    schema = f"drain_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    return schema, f"{PG}?options=-c%20search_path%3D{schema}"


def drop_schema(schema: str) -> None:
    import psycopg

    with psycopg.connect(PG, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


def drain_once(store: str, workers: int, task: str, count: int, timeout: float) -> float:
    """Tasks per second for `workers` processes draining a backlog of `count`."""
    with tempfile.TemporaryDirectory(prefix="afterwork-drain-") as tmp:
        schema = ""
        if store == "sqlite":
            url = f"sqlite:///{tmp}/drain.db"
        else:
            schema, url = pg_schema_url()
        try:
            enqueue(url, task, count)
            env = {**os.environ, "AFTERWORK_URL": url, "PYTHONPATH": str(ROOT)}
            procs = []
            started = time.monotonic()
            for n in range(workers):
                procs.append(subprocess.Popen(
                    ["taskset", "-c", str(n % 2), sys.executable, "-m", "afterwork", "worker",
                     "benchmarks.drain.tasks:aw", "--log-level", "warning"],
                    cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            try:
                first: tuple[float, int] | None = None  # the clock starts at the first success,
                while (done := succeeded(url)) < count:  # so process start-up is not counted
                    now = time.monotonic()
                    if first is None and done > 0:
                        first = (now, done)
                    if now - started > timeout:
                        raise TimeoutError(f"{store} x{workers} {task}: not drained in {timeout}s")
                    time.sleep(0.02)
                t0, done0 = first or (started, 0)
                elapsed = time.monotonic() - t0
            finally:
                for p in procs:
                    p.terminate()
                for p in procs:
                    p.wait(30)
            return (count - done0) / elapsed
        finally:
            if schema:
                drop_schema(schema)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=300)
    args = parser.parse_args()
    cases = [(store, workers, task) for store in ("sqlite", "postgres") for task in ("noop", "sleep10")
             for workers in (1, 2)]
    results: dict[tuple[str, int, str], list[float]] = {case: [] for case in cases}
    for round_no in range(1, args.rounds + 1):
        for case in cases:  # interleaved: every case once per round
            rate = drain_once(*case, count=args.tasks, timeout=args.timeout)
            results[case].append(rate)
            print(f"round {round_no} {case[0]:8} workers={case[1]} {case[2]:8} {rate:8.0f} tasks/s",
                  flush=True)
    print("\n| store | workers | task | tasks/s (median) | rounds |")
    print("| --- | ---: | --- | ---: | --- |")
    for (store, workers, task), rates in results.items():
        print(f"| {store} | {workers} | {task} | {statistics.median(rates):,.0f} | "
              f"{', '.join(f'{r:,.0f}' for r in rates)} |")


if __name__ == "__main__":
    main()
