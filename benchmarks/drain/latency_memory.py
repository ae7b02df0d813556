"""Enqueue-to-start latency at a moderate request rate, and the memory 100,000 queued tasks
cost the app.

    python -m benchmarks.drain.latency_memory

Latency: 200 requests/s for 10 s (open loop: request i is sent at t0 + i/200), each task
records how long after its request it started; p50/p99, for the in-app runner on SQLite and a
separate worker on PostgreSQL. Memory: wrk posts until the app has accepted 100,000 tasks
that its one task slot (1 s each) cannot keep up with; VmRSS before and after.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import closing
from pathlib import Path

import httpx

from benchmarks import procs
from benchmarks.measure import percentile, records

ROOT = Path(__file__).resolve().parents[2]
RATE = 200
SECONDS = 10
QUEUED = 100_000


async def paced_load(port: int) -> int:
    body = {"hostname": "h", "ip": "192.0.2.1", "cpus": 4, "memory_gb": 8, "os": "debian"}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        start = time.monotonic()

        async def one(i: int) -> int:
            await asyncio.sleep(max(0.0, start + i / RATE - time.monotonic()))
            return (await client.post("/abcd", json=body)).status_code

        codes = await asyncio.gather(*(one(i) for i in range(RATE * SECONDS)))
    return sum(1 for c in codes if c == 200)


def latency(app: str, worker: str | None, prepare: str | None) -> tuple[float, float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        record = Path(tmp) / "runs.bin"
        env = {**os.environ, "BENCH_RECORD_FILE": str(record), "PYTHONPATH": str(ROOT),
               "AFTERWORK_URL": f"sqlite:///{tmp}/aw.db"}
        log = Path(tmp) / "log"
        if prepare:
            procs.run(prepare.split(), env, log, ROOT, timeout=60)
        port = procs.free_port()
        w = procs.start(worker.split(), 0, env, log, ROOT) if worker else None
        server = procs.start(["uvicorn", app, "--port", str(port), "--log-level", "warning"],
                             0, env, log, ROOT)
        try:
            procs.wait_http(server, port, 30)
            time.sleep(2.0 if w else 0.5)  # let the worker start
            ok = asyncio.run(paced_load(port))
            time.sleep(2.0)
        finally:
            procs.stop(server)
            if w:
                procs.stop(w)
        delays = records(record)
        return statistics.median(delays) * 1000, percentile(delays, 0.99) * 1000, ok


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def memory() -> tuple[float, float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "AFTERWORK_URL": f"sqlite:///{tmp}/aw.db"}
        port = procs.free_port()
        server = procs.start(["uvicorn", "benchmarks.drain.slow_app:app", "--port", str(port),
                              "--log-level", "warning", "--no-access-log"], 0, env,
                             Path(tmp) / "log", ROOT)
        try:
            procs.wait_http(server, port, 30)
            httpx.post(f"http://127.0.0.1:{port}/abcd", json={"hostname": "h", "ip": "192.0.2.1",
                       "cpus": 1, "memory_gb": 1, "os": "x"})
            time.sleep(1.0)
            before = rss_mb(server.pid)
            wrk = subprocess.Popen(["taskset", "-c", "1", "wrk", "-t1", "-c16", "-d120s", "-s",
                                    str(ROOT / "benchmarks/post.lua"), f"http://127.0.0.1:{port}"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 120
            queued = 0
            while time.monotonic() < deadline:
                with closing(sqlite3.connect(f"{tmp}/aw.db")) as conn:
                    queued = conn.execute("SELECT COUNT(*) FROM afterwork_tasks WHERE state IN "
                                          "('queued', 'leased')").fetchone()[0]
                if queued >= QUEUED:
                    break
                time.sleep(0.5)
            wrk.send_signal(signal.SIGINT)
            wrk.wait(10)
            time.sleep(1.0)
            after = rss_mb(server.pid)
        finally:
            procs.stop(server)
        return before, after, queued


def main() -> None:
    print("| runner | p50 ms | p99 ms | requests |\n| --- | ---: | ---: | ---: |")
    p50, p99, ok = latency("benchmarks.apps.afterwork_sqlite:app", None, None)
    print(f"| in-app, SQLite | {p50:.1f} | {p99:.1f} | {ok} |", flush=True)
    p50, p99, ok = latency("benchmarks.apps.afterwork_pg_worker:app",
                           "afterwork worker benchmarks.apps.afterwork_pg_worker:app --log-level warning",
                           "benchmarks.apps.afterwork_pg prepare")
    print(f"| separate worker, PostgreSQL | {p50:.1f} | {p99:.1f} | {ok} |", flush=True)
    before, after, queued = memory()
    print(f"\nmemory: {queued:,} queued tasks; app VmRSS {before:.0f} MiB before, {after:.0f} MiB "
          f"after: +{after - before:.0f} MiB (target: at most +50 MiB)")


if __name__ == "__main__":
    sys.exit(main())
