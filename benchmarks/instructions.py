"""Instructions per request: what one request costs the server process, counted by valgrind
(callgrind), so that the figure does not move with whatever else the machine runs.

    python benchmarks/instructions.py                                # afterwork_sqlite, fastapi_async
    python benchmarks/instructions.py --against ../before/src        # and afterwork from there
    python benchmarks/instructions.py --apps afterwork_pg --against ../before/src

On a machine shared with other work, requests/s and CPU time move by tens of percent between
runs; the instructions a request executes do not (within about 1%). Each app is called in
this process as a server calls it (an ASGI scope naming its spec version, so afterwork
behaves as under uvicorn: the heap frozen, tasks run after the response), 32 requests in
flight on uvloop (UVICORN_LOOP=asyncio: asyncio's loop), with its real store (a SQLite file)
and its writer thread; every thread's instructions count. Per request is the difference
between a run of `--few` and one of `--many` requests, divided by the difference, so
start-up and shutdown cancel out. What it leaves out: the socket, the HTTP parser (the same
for every app) and time spent waiting (an fsync's wait costs no instructions). Slow: valgrind
runs Python about 50 times slower; a pair of runs takes a few minutes.

    python3.12 benchmarks/instructions.py --by-function --apps afterwork_sqlite --top 60

`--by-function` (Python 3.12 or newer) splits the count by Python function: the process runs
with CPython's perf trampolines (`PYTHONPERFSUPPORT=1`), which give each Python function an
entry of its own that callgrind counts, named in the `/tmp/perf-PID.map` CPython writes; each
line is a function's inclusive instructions per request (its callees included, over all the
times it ran or resumed), the same difference of two runs. Where the time of a request goes,
function by function, without a sampling profiler's noise or cProfile's distortion.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BODY = json.dumps({"hostname": "db1", "ip": "10.0.0.7", "cpus": 8, "memory_gb": 32.0,
                   "os": "linux", "tags": ["web"]}).encode()
IN_FLIGHT = 32


def _scope() -> dict[str, Any]:
    return {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1", "method": "POST", "scheme": "http", "path": "/abcd",
            "raw_path": b"/abcd", "query_string": b"", "root_path": "",
            "headers": [(b"host", b"bench"), (b"content-type", b"application/json"),
                        (b"content-length", str(len(BODY)).encode())],
            "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}


async def _serve(app: Any, requests: int, record_file: Path) -> int:
    """Lifespan start-up, `requests` requests (IN_FLIGHT at once), the tasks run, shutdown."""
    lifespan: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    done = asyncio.Event()

    async def lifespan_send(message: dict[str, Any]) -> None:
        if message["type"].endswith(("complete", "failed")):
            done.set()

    await lifespan.put({"type": "lifespan.startup"})
    life = asyncio.create_task(app({"type": "lifespan", "asgi": {"version": "3.0"}},
                                   lifespan.get, lifespan_send))
    await done.wait()
    done.clear()
    left = [requests]

    async def one() -> None:
        body = [{"type": "http.request", "body": BODY, "more_body": False}]

        async def receive() -> dict[str, Any]:
            if body:
                return body.pop()
            await asyncio.Event().wait()  # a client that stays connected
            raise AssertionError("unreachable")

        async def send(message: dict[str, Any]) -> None:
            pass

        await app(_scope(), receive, send)

    async def connection() -> None:
        # One of IN_FLIGHT connections, each sending its next request when the last one is
        # answered, as a server's keep-alive connections do: nothing more is alive at once
        # (a task per request made up front, waiting on a semaphore, kept every request's
        # coroutine alive for the collector to scan and a semaphore to wake: costs of this
        # harness, not of a server, larger for an app whose requests suspend)
        while left[0] > 0:
            left[0] -= 1
            await one()

    await asyncio.gather(*(connection() for _ in range(IN_FLIGHT)))
    for _ in range(3000):  # the tasks ran (each appends 8 bytes), at most 30 s
        if record_file.exists() and record_file.stat().st_size >= 8 * requests:
            break
        await asyncio.sleep(0.01)
    await lifespan.put({"type": "lifespan.shutdown"})
    await done.wait()
    await life
    return record_file.stat().st_size // 8 if record_file.exists() else 0


def serve(app_name: str, requests: int) -> None:
    """The measured process (run under valgrind)."""
    with tempfile.TemporaryDirectory(prefix="afterwork-instructions-") as tmp:
        record_file = Path(tmp) / "runs"
        os.environ["AFTERWORK_URL"] = f"sqlite:///{tmp}/bench.db"
        os.environ["BENCH_RECORD_FILE"] = str(record_file)
        sys.path.insert(0, str(ROOT))
        app = importlib.import_module(f"benchmarks.apps.{app_name}").app
        if os.environ.get("UVICORN_LOOP", "uvloop") == "uvloop":
            import uvloop

            ran = uvloop.run(_serve(app, requests, record_file))
        else:
            ran = asyncio.run(_serve(app, requests, record_file))
    if app_name != "no_task" and ran < requests:
        raise SystemExit(f"{app_name}: {ran} of {requests} tasks ran")


def count(app_name: str, requests: int, source: Path | None,
          by_function: dict[str, int] | None = None) -> int:
    """Instructions of one process serving `requests` requests (every thread); with
    `by_function`, also each Python function's inclusive instructions, filled in."""
    env = dict(os.environ)
    if source is not None:
        env["PYTHONPATH"] = str(source)
    with tempfile.TemporaryDirectory(prefix="afterwork-callgrind-") as tmp:
        out = Path(tmp) / "callgrind.out"
        if by_function is not None:
            env["PYTHONPERFSUPPORT"] = "1"
        done = subprocess.run(
            ["valgrind", "--tool=callgrind",
             f"--callgrind-out-file={out if by_function is not None else '/dev/null'}",
             sys.executable, __file__, "--serve", app_name, str(requests)],
            env=env, capture_output=True, text=True, timeout=3600, check=False)
        found = re.search(r"Collected\s*:\s*(\d+)", done.stderr)
        if done.returncode != 0 or found is None:
            raise SystemExit(f"{app_name} under valgrind failed:\n{done.stderr[-2000:]}")
        if by_function is not None:
            pid = re.search(r"==(\d+)==", done.stderr)
            perf_map = Path(f"/tmp/perf-{pid.group(1)}.map") if pid else None
            if perf_map is None or not perf_map.exists():
                raise SystemExit("no perf map written: --by-function needs Python 3.12 or newer")
            try:
                by_function.update(_inclusive_by_function(out, perf_map))
            finally:
                perf_map.unlink()
    return int(found.group(1))


def _inclusive_by_function(out: Path, perf_map: Path) -> dict[str, int]:
    """Python function -> inclusive instructions, from a callgrind file and CPython's perf
    map (each trampoline's address -> `py::qualname:file`). Entries callgrind marks as
    recursive (`'2`) are left out: their cost is inside the first entry's already."""
    names = {}
    for line in perf_map.read_text().splitlines():
        address, _, rest = line.partition(" ")
        names[int(address, 16)] = rest.partition(" ")[2].removeprefix("py::")
    annotated = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100", str(out)],
                               capture_output=True, text=True, check=True).stdout
    found: dict[str, int] = {}
    for line in annotated.splitlines():
        hit = re.match(r"\s*([\d,]+) \([^)]*\)\s+\?\?\?:0x([0-9a-f]+)('\d+)? ", line)
        if hit and not hit.group(3):
            name = names.get(int(hit.group(2), 16))
            if name is not None:
                found[name] = found.get(name, 0) + int(hit.group(1).replace(",", ""))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", default="fastapi_async,afterwork_sqlite",
                        help="comma-separated modules of benchmarks/apps")
    parser.add_argument("--against", type=Path,
                        help="another tree's src/: each afterwork app of --apps from there too")
    parser.add_argument("--few", type=int, default=200)
    parser.add_argument("--many", type=int, default=1200)
    parser.add_argument("--by-function", action="store_true",
                        help="per Python function too (Python 3.12+: perf trampolines)")
    parser.add_argument("--top", type=int, default=40, help="with --by-function: how many")
    parser.add_argument("--match", default="", help="with --by-function: only names with this")
    parser.add_argument("--serve", nargs=2, metavar=("APP", "REQUESTS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve[0], int(args.serve[1]))
        return
    runs: list[tuple[str, str, Path | None]] = [(name, name, None) for name in args.apps.split(",")]
    if args.against:
        runs += [(f"{name}@against", name, args.against.resolve())
                 for name in args.apps.split(",") if name.startswith("afterwork")]
    per_request: dict[str, float] = {}
    for label, app_name, source in runs:
        functions: tuple[dict[str, int], dict[str, int]] | None = ({}, {}) if args.by_function else None
        few = count(app_name, args.few, source, functions[0] if functions else None)
        many = count(app_name, args.many, source, functions[1] if functions else None)
        per_request[label] = (many - few) / (args.many - args.few)
        print(f"{label:<28} {per_request[label]:>12,.0f} instructions/request", flush=True)
        if functions:
            each = {name: (functions[1].get(name, 0) - functions[0].get(name, 0))
                    / (args.many - args.few) for name in functions[0].keys() | functions[1].keys()}
            chosen = sorted((n for n in each if args.match in n), key=lambda n: -each[n])
            for name in chosen[:args.top]:
                print(f"  {each[name]:>12,.0f}  {name}")
    base = per_request.get("fastapi_async")
    if base:
        for label, value in per_request.items():
            print(f"{label:<28} {value / base:.2f}x fastapi_async")


if __name__ == "__main__":
    main()
