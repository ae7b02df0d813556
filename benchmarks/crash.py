"""The crash column: the same load as run.py, every process of the system SIGKILLed halfway,
restarted, drained; how many accepted tasks never ran.

    python -m benchmarks.crash --duration 6 --task-seconds 0.005

Each task does 5 ms of awaited work (`BENCH_TASK_SECONDS`), so a backlog exists at the kill.

Accepted = 2xx responses wrk counted. Ran = task executions recorded after restart and drain
(bounded). Lost = accepted - ran, a lower bound where a system may run a task twice (afterwork
re-runs what was running at the kill). The app and, for peers, their worker are killed together,
as a deploy or a machine failure would; brokers and databases (Redis, PostgreSQL) keep running.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from benchmarks import load, procs
from benchmarks.measure import ROOT, run_count, wait_until
from benchmarks.systems import System, select

DRAIN_SECONDS = 30.0


def _kill(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is not None and proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def crash_once(system: System, duration: int, connections: int, task_seconds: float) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix=f"afterwork-crash-{system.name}-") as tmp:
        record = Path(tmp) / "runs.bin"
        env = {**os.environ, "BENCH_RECORD_FILE": str(record), "AFTERWORK_URL": f"sqlite:///{tmp}/aw.db",
               "BENCH_TASK_SECONDS": str(task_seconds)}
        log = Path(tmp) / "log"
        port = procs.free_port()
        if system.prepare:
            procs.run(system.prepare.split(), env, log, ROOT, timeout=60)

        def start() -> tuple[subprocess.Popen[bytes] | None, subprocess.Popen[bytes]]:
            worker = procs.start(system.worker.split(), 0, env, log, ROOT) if system.worker else None
            server = procs.start(["uvicorn", system.app, "--host=127.0.0.1", f"--port={port}",
                                  "--no-access-log", "--log-level=warning"], 0, env, log, ROOT)
            procs.wait_http(server, port, timeout=30)
            return worker, server

        worker, server = start()
        result: list[load.Load] = []
        loader = threading.Thread(target=lambda: result.append(
            load.drive("wrk", port, connections, duration, 1)))
        loader.start()
        time.sleep(duration / 2)
        _kill(server)
        _kill(worker)
        ran_at_kill = run_count(record)
        loader.join(duration + 60)
        accepted = result[0].ok if result else 0
        worker, server = start()
        try:
            wait_until(lambda: run_count(record), accepted, DRAIN_SECONDS)
            time.sleep(1.0)
        finally:
            procs.stop(server)
            if worker is not None:
                procs.stop(worker)
        ran = run_count(record)
        return {"system": system.name, "accepted": accepted, "backlog": max(0, accepted - ran_at_kill),
                "ran": ran, "lost": max(0, accepted - ran)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=6)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--systems", default=None)
    parser.add_argument("--task-seconds", type=float, default=0.005,
                        help="work per task, so that a backlog exists at the kill")
    args = parser.parse_args()
    rows = []
    for system in select(args.systems.split(",") if args.systems else None):
        if not system.schedules_tasks:
            continue
        why = system.unavailable()
        row = ({"system": system.name, "note": why} if why
               else crash_once(system, args.duration, args.connections, args.task_seconds))
        rows.append(row)
        print(row, flush=True)
    print("\n| system | accepted | not yet run at the kill | ran after restart | lost |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for r in rows:
        if "note" in r:
            print(f"| {r['system']} | {r['note']} | | | |")
        else:
            print(f"| {r['system']} | {r['accepted']:,} | {r['backlog']:,} | {r['ran']:,} | {r['lost']:,} |")


if __name__ == "__main__":
    main()
