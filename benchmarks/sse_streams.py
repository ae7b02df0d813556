"""Do open Server-Sent Event streams slow the app's other endpoints?

Starts `benchmarks/apps/sse_app.py` under uvicorn on 127.0.0.1 (pinned to core 0), queues N
tasks, times a plain endpoint (sequential keep-alive GETs from core 1), then opens N streams,
one per task, and times the plain endpoint again with them open. Prints both, and the
server's CPU use while the streams were idle.

    python benchmarks/sse_streams.py --streams 300 --requests 500
    python benchmarks/sse_streams.py --src /path/to/other/checkout/src   # compare a version

Bounded: at most 2000 streams, 5000 requests, and a time limit on every step.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.procs import free_port, group_cpu_seconds, start, stop

ROOT = Path(__file__).resolve().parents[1]
STEP_SECONDS = 120.0  # no step of the benchmark waits longer


def _timings(base: str, requests: int) -> list[float]:
    found = []
    with httpx.Client(base_url=base, timeout=30) as client:
        for _ in range(20):  # warm the connection and the app
            client.get("/plain")
        deadline = time.monotonic() + STEP_SECONDS
        for _ in range(requests):
            t = time.perf_counter()
            assert client.get("/plain").status_code == 200
            found.append((time.perf_counter() - t) * 1000)
            if time.monotonic() > deadline:
                break
    return found


def _summary(label: str, ms: list[float]) -> str:
    q = statistics.quantiles(ms, n=100)
    return (f"{label:<28} n={len(ms):<5} p50={statistics.median(ms):6.2f} ms  p95={q[94]:6.2f} ms"
            f"  p99={q[98]:6.2f} ms  max={max(ms):7.2f} ms")


class Streams:
    """N open streams on an event loop of their own (a thread), until `close`."""

    def __init__(self, base: str, ids: list[str]) -> None:
        self.base, self.ids = base, ids
        self.opened = 0
        self.refused = 0
        self._stop: asyncio.Event | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_until_complete, args=(self._run(),))
        self._thread.start()

    async def _one(self, client: httpx.AsyncClient, task_id: str) -> None:
        assert self._stop is not None
        async with client.stream("GET", f"/afterwork/api/tasks/{task_id}/events") as answer:
            if answer.status_code != 200:
                self.refused += 1
                return
            self.opened += 1
            lines = answer.aiter_lines()
            while not self._stop.is_set():
                reading = asyncio.ensure_future(lines.__anext__())
                stopping = asyncio.ensure_future(self._stop.wait())
                await asyncio.wait({reading, stopping}, return_when=asyncio.FIRST_COMPLETED)
                for f in (reading, stopping):
                    f.cancel()

    async def _run(self) -> None:
        self._stop = asyncio.Event()
        limits = httpx.Limits(max_connections=len(self.ids) + 10)
        async with httpx.AsyncClient(base_url=self.base, timeout=STEP_SECONDS, limits=limits) as client:
            await asyncio.gather(*(self._one(client, i) for i in self.ids), return_exceptions=True)

    def wait_open(self) -> None:
        deadline = time.monotonic() + STEP_SECONDS
        while self.opened + self.refused < len(self.ids) and time.monotonic() < deadline:
            time.sleep(0.05)

    def close(self) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(STEP_SECONDS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", type=int, default=300)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--idle", type=float, default=5.0, help="seconds to measure idle CPU")
    parser.add_argument("--src", help="run the server from this source tree (PYTHONPATH)")
    args = parser.parse_args()
    streams, requests = min(args.streams, 2000), min(args.requests, 5000)
    os.sched_setaffinity(0, {1})  # the clients on core 1, the server on core 0
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = dict(os.environ, AFTERWORK_URL=f"sqlite:///{tmp}/sse.db",
                   PYTHONPATH=os.pathsep.join(p for p in (args.src, str(ROOT)) if p))
        log = Path(tmp) / "server.log"
        server = start(["uvicorn", "benchmarks.apps.sse_app:app", "--host", "127.0.0.1", "--port",
                        str(port), "--log-level", "warning", "--no-access-log"], 0, env, log, ROOT)
        try:
            deadline = time.monotonic() + STEP_SECONDS
            while True:
                try:
                    httpx.get(f"{base}/plain", timeout=1)
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline and server.poll() is None, log.read_text()
                    time.sleep(0.1)
            with httpx.Client(base_url=base, timeout=30) as client:
                ids = [client.post("/later").json()["id"] for _ in range(streams)]
            before = _timings(base, requests)
            opened = Streams(base, ids)
            try:
                opened.wait_open()
                time.sleep(1.0)
                cpu0 = group_cpu_seconds(server.pid)
                time.sleep(args.idle)
                idle_cpu = (group_cpu_seconds(server.pid) - cpu0) / args.idle
                during = _timings(base, requests)
            finally:
                opened.close()
        finally:
            stop(server)
    print(f"server: {args.src or 'this checkout'}; streams open {opened.opened}, refused "
          f"{opened.refused}")
    print(_summary("plain endpoint, no streams", before))
    print(_summary(f"plain endpoint, {opened.opened} streams", during))
    print(f"server CPU with the streams open and idle: {idle_cpu * 100:.1f}% of a core")


if __name__ == "__main__":
    main()
