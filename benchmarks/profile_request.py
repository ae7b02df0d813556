"""Where one request's microseconds go: a sampling profile of one app under wrk load, plus the
garbage collector's collections and time, per request.

    python benchmarks/profile_request.py                          # afterwork_sqlite, 5 s
    python benchmarks/profile_request.py --app fastapi_async      # the baseline, same load
    python benchmarks/profile_request.py --spy                    # and a py-spy profile

The app runs in one uvicorn worker pinned to core 0 (uvicorn's default stack here: uvloop +
httptools when installed; set UVICORN_LOOP=asyncio UVICORN_HTTP=h11 for the other), wrk on
core 1, as `smoke.py`. The server process counts every collection with `gc.callbacks` (per
generation, with its time) and reports them at shutdown. With `--spy`, py-spy (`pip install
py-spy`; a measurement tool, not a dependency of afterwork) samples every thread of the
server at 500 Hz during the load, and the samples are summed by where their innermost frame of
interest lies: the request path of afterwork, the writer thread and its SQLite calls, the
runner, the app (FastAPI, pydantic), the server (uvicorn) and the event loop. Idle threads are
not sampled, so "per request" is busy time of that thread, whichever core it ran on.
"""

from __future__ import annotations

import argparse
import collections
import gc
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import load, procs

ROOT = Path(__file__).resolve().parent.parent

# Innermost match wins, checked in this order for each frame from the leaf up.
CATEGORIES = (
    ("sqlite: statements + commit (writer thread)", ("stores/_sql.py", "stores/sqlite.py")),
    ("writer: grouping, hand-off", ("afterwork/_writer.py",)),
    ("afterwork: plan (codec, ids, options)", ("afterwork/_enqueue.py", "afterwork/_codec.py",
                                               "afterwork/_ids.py", "afterwork/_registry.py")),
    ("afterwork: batch, intake, middleware", ("afterwork/_batch.py", "afterwork/_intake.py",
                                              "afterwork/_asgi.py", "afterwork/_background.py",
                                              "afterwork/_compat.py")),
    ("afterwork: runner (adopt, run, outcomes)", ("afterwork/_runner.py",)),
    ("app: fastapi, starlette, pydantic", ("fastapi/", "starlette/", "pydantic", "benchmarks/apps")),
    ("server: uvicorn, h11/httptools", ("uvicorn/", "h11/", "httptools")),
    ("event loop: asyncio/uvloop", ("asyncio/", "uvloop", "selectors.py")),
    ("threading", ("threading.py", "concurrent/")),
)


def serve(app: str, port: int, stats: str) -> None:
    """The server process: uvicorn in this process, collections counted."""
    import uvicorn

    counts = collections.Counter[int]()
    seconds = collections.Counter[int]()
    collected = collections.Counter[int]()
    started: dict[str, float] = {}

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started["t"] = time.perf_counter()
        else:
            generation = info["generation"]
            counts[generation] += 1
            collected[generation] += info["collected"]
            seconds[generation] += time.perf_counter() - started.get("t", time.perf_counter())

    profiler = None
    if os.environ.get("PROFILE_CPROFILE"):  # the event loop's thread, deterministic
        import cProfile

        profiler = cProfile.Profile()

    def reset() -> None:  # the client says when the measured load starts
        if profiler is not None:
            profiler.enable()
        counts.clear()
        seconds.clear()
        collected.clear()
        commits.clear()

    gc.callbacks.append(on_gc)
    if os.environ.get("PROFILE_GC_THRESHOLD"):  # try another first-generation threshold
        gc.set_threshold(int(os.environ["PROFILE_GC_THRESHOLD"]), *gc.get_threshold()[1:])
    import signal

    signal.signal(signal.SIGUSR1, lambda *_: reset())
    commits = _count_commits()
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(os.environ["PROFILE_CPROFILE"])
    Path(stats).write_text(json.dumps({
        "collections": {str(g): counts[g] for g in range(3)},
        "gc_seconds": {str(g): seconds[g] for g in range(3)},
        "collected": {str(g): collected[g] for g in range(3)},
        "frozen": gc.get_freeze_count(),
        "commits": sum(commits.values()),
    }))


def _thread_files(pid: int, name: str) -> Iterator[tuple[int, str]]:
    """(thread id, text of /proc/PID/task/TID/NAME) of each thread still there."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            yield int(task.name), (task / name).read_text()
        except OSError:
            continue


def thread_cpu(pid: int, part: slice = slice(11, 13)) -> dict[int, float]:
    """CPU seconds of each thread of a process: user + system (`part`: user 11:12, system
    12:13 of the fields after the name)."""
    found = {}
    for tid, stat in _thread_files(pid, "stat"):
        fields = stat[stat.rindex(")") + 2:].split()
        found[tid] = sum(int(f) for f in fields[part]) / procs.CLOCK_TICKS
    return found


def switches(pid: int) -> dict[int, tuple[int, int]]:
    """(voluntary, involuntary) context switches of each thread of a process so far."""
    found = {}
    for tid, status in _thread_files(pid, "status"):
        counts = dict(line.split(":\t") for line in status.splitlines() if "ctxt_switches" in line)
        found[tid] = (int(counts["voluntary_ctxt_switches"]), int(counts["nonvoluntary_ctxt_switches"]))
    return found


def _count_commits() -> collections.Counter[str]:
    """Count the SQLite store's write transactions (a wrapper on its one transaction method)."""
    commits = collections.Counter[str]()
    try:
        from afterwork.stores.sqlite import SqliteStore
    except ImportError:
        return commits
    original = SqliteStore._transaction

    def counted(self: SqliteStore, conn: object):  # type: ignore[no-untyped-def]
        commits["n"] += 1
        return original(self, conn)  # type: ignore[arg-type]

    SqliteStore._transaction = counted  # type: ignore[method-assign,assignment]
    return commits


def categorize(raw: str) -> tuple[collections.Counter[str], int, collections.Counter[str]]:
    """py-spy raw (collapsed) stacks -> samples per category, and per innermost frame."""
    found = collections.Counter[str]()
    leaves = collections.Counter[str]()
    total = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        total += count
        frames = stack.split(";")
        leaves[frames[-1]] += count
        label = "other"
        for frame in reversed(frames):
            hit = next((name for name, marks in CATEGORIES if any(m in frame for m in marks)), None)
            if hit is not None:
                label = hit
                break
        found[label] += count
    return found, total, leaves


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--app", default="afterwork_sqlite", help="a module of benchmarks/apps")
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--spy", action="store_true", help="sample with py-spy too")
    parser.add_argument("--top", type=int, default=0, help="with --spy: the N busiest frames")
    parser.add_argument("--cprofile", type=Path, help="cProfile the event loop's thread into this "
                        "file (slows it down; for where, not how fast)")
    parser.add_argument("--serve", nargs=3, metavar=("APP", "PORT", "STATS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve[0], int(args.serve[1]), args.serve[2])
        return 0
    os.sched_setaffinity(0, {1})
    tool = load.generator("wrk")
    with tempfile.TemporaryDirectory(prefix="afterwork-profile-") as tmp:
        port = procs.free_port()
        stats = Path(tmp) / "gc.json"
        env = {**os.environ, "AFTERWORK_URL": f"sqlite:///{tmp}/afterwork.db",
               "BENCH_RECORD_FILE": str(Path(tmp) / "runs.bin")}
        if args.cprofile:
            env["PROFILE_CPROFILE"] = str(args.cprofile.resolve())
        server = procs.start(["benchmarks.profile_request", "--serve",
                              f"benchmarks.apps.{args.app}:app", str(port), str(stats)],
                             0, env, Path(tmp) / "server.log", ROOT)
        try:
            procs.wait_http(server, port, timeout=30)
            load.drive(tool, port, args.connections, 1, 1)  # warm-up
            time.sleep(0.5)
            server.send_signal(10)  # SIGUSR1: count collections from here
            cpu_before = procs.group_cpu_seconds(server.pid)
            threads_before = thread_cpu(server.pid)
            system_before = thread_cpu(server.pid, slice(12, 13))
            switches_before = switches(server.pid)
            spy = None
            if args.spy:
                spy_bin = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
                spy = subprocess.Popen(
                    [spy_bin, "record", "--pid", str(server.pid), "--rate", "500", "--format",
                     "raw", "--threads", "--nonblocking", "--duration", str(args.duration),
                     "--output", str(Path(tmp) / "spy.txt")],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            result = load.drive(tool, port, args.connections, args.duration, 1)
            cpu = procs.group_cpu_seconds(server.pid) - cpu_before
            threads = {tid: t - threads_before.get(tid, 0.0) for tid, t in thread_cpu(server.pid).items()}
            system = {tid: t - system_before.get(tid, 0.0)
                      for tid, t in thread_cpu(server.pid, slice(12, 13)).items()}
            switched = {}
            for tid, (v, n) in switches(server.pid).items():
                v0, n0 = switches_before.get(tid, (0, 0))
                switched[tid] = (v - v0, n - n0)
            if spy is not None:
                spy.wait(30)
        finally:
            procs.stop(server)
        requests = max(1, result.requests)
        print(f"{args.app}: {result.rps:,.0f} req/s, p50 {result.p50_ms:.1f} ms, p99 "
              f"{result.p99_ms:.1f} ms; server CPU {cpu * 1e6 / requests:.0f} us/request")
        busiest = sorted(threads.items(), key=lambda kv: -kv[1])[:3]
        print("  by thread: " + ", ".join(
            f"{'event loop' if tid == server.pid else f'thread {tid}'} {t * 1e6 / requests:.0f} us "
            f"({system.get(tid, 0.0) * 1e6 / requests:.0f} in the kernel)"
            for tid, t in busiest if t > 0))
        print("  context switches per request (voluntary + involuntary): " + ", ".join(
            f"{'event loop' if tid == server.pid else f'thread {tid}'} "
            f"{switched.get(tid, (0, 0))[0] / requests:.2f} + {switched.get(tid, (0, 0))[1] / requests:.2f}"
            for tid, t in busiest if t > 0))
        if stats.exists():
            gcs = json.loads(stats.read_text())
            per_gen = ", ".join(f"gen{g}: {gcs['collections'][g]:,} ({gcs['gc_seconds'][g] * 1e3:.0f} ms)"
                                for g in "012")
            total = sum(gcs["gc_seconds"].values())
            if gcs.get("commits"):
                print(f"  SQLite write transactions: {gcs['commits']:,}, "
                      f"{requests / gcs['commits']:.1f} requests per commit")
            print(f"  gc: {per_gen}; {total * 1e6 / requests:.1f} us/request; "
                  f"{sum(gcs['collected'].values()) / requests:.1f} objects in cycles freed "
                  f"per request; frozen objects {gcs['frozen']:,}")
        spy_file = Path(tmp) / "spy.txt"
        if spy_file.exists():
            found, total, leaves = categorize(spy_file.read_text())
            print(f"  py-spy: {total:,} busy samples at 500 Hz over all threads")
            for label, n in found.most_common():
                print(f"  {n * 2000 / requests:7.1f} us/request  {100 * n / max(1, total):5.1f}%  {label}")
            print("  innermost frames:")
            for frame, n in leaves.most_common(args.top):
                print(f"  {n * 2000 / requests:7.1f} us/request  {frame}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
