"""Instructions per request: what one request costs the server process, counted by valgrind
(callgrind), so that the figure does not move with whatever else the machine runs.

    python benchmarks/instructions.py                                # afterwork_sqlite, fastapi_async
    python benchmarks/instructions.py --against ../before/src        # and afterwork from there

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
    slots = asyncio.Semaphore(IN_FLIGHT)

    async def one() -> None:
        body = [{"type": "http.request", "body": BODY, "more_body": False}]

        async def receive() -> dict[str, Any]:
            if body:
                return body.pop()
            await asyncio.Event().wait()  # a client that stays connected
            raise AssertionError("unreachable")

        async def send(message: dict[str, Any]) -> None:
            pass

        async with slots:
            await app(_scope(), receive, send)

    await asyncio.gather(*(one() for _ in range(requests)))
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


def count(app_name: str, requests: int, source: Path | None) -> int:
    """Instructions of one process serving `requests` requests (every thread)."""
    env = dict(os.environ)
    if source is not None:
        env["PYTHONPATH"] = str(source)
    done = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
         __file__, "--serve", app_name, str(requests)],
        env=env, capture_output=True, text=True, timeout=3600, check=False)
    found = re.search(r"Collected\s*:\s*(\d+)", done.stderr)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"{app_name} under valgrind failed:\n{done.stderr[-2000:]}")
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", default="fastapi_async,afterwork_sqlite",
                        help="comma-separated modules of benchmarks/apps")
    parser.add_argument("--against", type=Path, help="another tree's src/: afterwork_sqlite from there too")
    parser.add_argument("--few", type=int, default=200)
    parser.add_argument("--many", type=int, default=1200)
    parser.add_argument("--serve", nargs=2, metavar=("APP", "REQUESTS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve[0], int(args.serve[1]))
        return
    runs: list[tuple[str, str, Path | None]] = [(name, name, None) for name in args.apps.split(",")]
    if args.against:
        runs.append(("afterwork_sqlite@against", "afterwork_sqlite", args.against.resolve()))
    per_request: dict[str, float] = {}
    for label, app_name, source in runs:
        few, many = count(app_name, args.few, source), count(app_name, args.many, source)
        per_request[label] = (many - few) / (args.many - args.few)
        print(f"{label:<28} {per_request[label]:>12,.0f} instructions/request", flush=True)
    base = per_request.get("fastapi_async")
    if base:
        for label, value in per_request.items():
            print(f"{label:<28} {value / base:.2f}x fastapi_async")


if __name__ == "__main__":
    main()
