"""One measurement: start a system, load it, wait for its tasks, stop it, return the figures."""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from benchmarks import load, procs
from benchmarks.apps.common import RECORD
from benchmarks.systems import System

ROOT = Path(__file__).resolve().parent.parent
DRAIN_IDLE_S = 5.0  # stop waiting for tasks once none has run for this long


@dataclass(frozen=True)
class Settings:
    load_tool: str  # "wrk" or "python"
    connections: int
    duration: int  # seconds (wrk takes whole seconds)
    warmup: int
    drain_timeout: float
    server_cpu: int
    worker_cpu: int
    load_cpu: int
    redis_url: str
    pg_url: str
    placement: str = "shared"  # see PLACEMENTS
    load_nice: int = 0  # the load generator's niceness (below 0: ahead of the workers)


# Where the processes go on a 2-core machine: (server core, workers' core, load core, load nice).
PLACEMENTS: dict[str, tuple[int, int, int, int]] = {
    # one core for the web process and whatever runs its tasks (in-app runner, or a worker
    # pinned beside it); the load generator on the other core
    "shared": (0, 0, 1, 0),
    # the web process alone on core 0, workers on core 1; the load generator also on core 1
    # (there is no third core), ahead of the workers (nice -10) so that it keeps the load up
    # and the workers catch up with what it leaves
    "split": (0, 1, 1, -10),
    # as shared, with the server on asyncio's own loop and h11 (the others: uvicorn's pick,
    # uvloop + httptools where installed, as `fastapi[standard]` installs them)
    "shared_h11": (0, 0, 1, 0),
}
# A placement's server stack, where it is not uvicorn's own pick: uvicorn reads these.
STACKS: dict[str, dict[str, str]] = {"shared_h11": {"UVICORN_LOOP": "asyncio", "UVICORN_HTTP": "h11"}}


def placed(settings: Settings, placement: str) -> Settings:
    server, worker, load_cpu, nice = PLACEMENTS[placement]
    return replace(settings, placement=placement, server_cpu=server, worker_cpu=worker,
                   load_cpu=load_cpu, load_nice=nice)


@dataclass(frozen=True)
class Measurement:
    system: str
    round: int
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    accepted: int  # tasks scheduled by the 2xx/3xx responses (one each, none for no_task)
    failed: int
    socket_errors: int
    executed: int  # task runs recorded after the measured load started
    backlog_at_end: int  # accepted tasks not yet run when the load stopped
    drain_s: float | None  # load end -> every accepted task ran; None: never within the timeout
    start_delay_p50_ms: float | None  # request scheduled the task -> task started
    start_delay_p99_ms: float | None
    cpu_ms_per_request: float  # app and worker CPU, load start to drain end, per request
    peak_rss_mb: float  # VmHWM of the app server process
    placement: str = "shared"


def records(path: Path, skip: int = 0) -> list[float]:
    """The enqueue-to-start delays (seconds) recorded in ``path``, after the first ``skip``."""
    data = path.read_bytes()[skip * RECORD.size :]
    whole = len(data) - len(data) % RECORD.size
    return [value for (value,) in RECORD.iter_unpack(data[:whole])]


def run_count(path: Path) -> int:
    return path.stat().st_size // RECORD.size if path.exists() else 0


def wait_until(count: Callable[[], int], target: int, timeout: float) -> float | None:
    """Seconds until ``count() >= target``; None on timeout or when the count stops moving."""
    started = last_change = time.monotonic()
    last = count()
    while True:
        now, seen = time.monotonic(), count()
        if seen >= target:
            return now - started
        if seen != last:
            last, last_change = seen, now
        if now - started > timeout or now - last_change > DRAIN_IDLE_S:
            return None
        time.sleep(0.01)


def settle(count: Callable[[], int], quiet: float = 0.3, timeout: float = 5.0) -> None:
    """Return once ``count()`` has not moved for ``quiet`` seconds (or after ``timeout``)."""
    deadline = time.monotonic() + timeout
    last, last_change = count(), time.monotonic()
    while time.monotonic() < deadline and time.monotonic() - last_change < quiet:
        time.sleep(0.01)
        if (seen := count()) != last:
            last, last_change = seen, time.monotonic()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def measure(system: System, round_no: int, settings: Settings, logs: Path) -> Measurement:
    with tempfile.TemporaryDirectory(prefix=f"afterwork-bench-{system.name}-") as tmp:
        record_file = Path(tmp) / "runs.bin"
        port = procs.free_port()
        env = {
            **os.environ,
            "BENCH_RECORD_FILE": str(record_file),
            "BENCH_REDIS_URL": settings.redis_url,
            "BENCH_PG_URL": settings.pg_url,
            "AFTERWORK_URL": f"sqlite:///{tmp}/afterwork.db",
            **STACKS.get(settings.placement, {}),
        }
        log = logs / f"{system.name}-{settings.placement}-round{round_no}.log"
        if system.prepare:
            procs.run(system.prepare.split(), env, log, ROOT, timeout=60)
        worker = None
        if system.worker:
            worker = procs.start(system.worker.split(), settings.worker_cpu, env, log, ROOT)
        uvicorn = ["uvicorn", system.app, "--host=127.0.0.1", f"--port={port}", "--no-access-log"]
        uvicorn.append("--log-level=warning")
        server = procs.start(uvicorn, settings.server_cpu, env, log, ROOT)
        try:
            procs.wait_http(server, port, timeout=30)
            pgids = [server.pid] + ([worker.pid] if worker else [])
            return _load_and_drain(system, round_no, settings, port, record_file, server.pid, pgids)
        finally:
            procs.stop(server)
            if worker:
                procs.stop(worker)


def _load_and_drain(
    system: System,
    round_no: int,
    settings: Settings,
    port: int,
    record_file: Path,
    server_pid: int,
    pgids: list[int],
) -> Measurement:
    def count() -> int:
        return run_count(record_file)

    def cpu() -> float:
        return sum(procs.group_cpu_seconds(pgid) for pgid in pgids)

    per_request = int(system.schedules_tasks)  # tasks each accepted request schedules
    if settings.warmup > 0:
        warm = load.drive(settings.load_tool, port, settings.connections, settings.warmup,
                          settings.load_cpu, settings.load_nice)
        wait_until(count, warm.ok * per_request, settings.drain_timeout)
        settle(count)  # tasks of requests still in flight when the warm-up stopped
    offset, cpu_before = count(), cpu()
    result = load.drive(settings.load_tool, port, settings.connections, settings.duration,
                        settings.load_cpu, settings.load_nice)
    accepted = result.ok * per_request
    backlog = max(0, offset + accepted - count())
    drain_s = wait_until(count, offset + accepted, settings.drain_timeout)
    cpu_used = cpu() - cpu_before
    delays = records(record_file, skip=offset)
    return Measurement(
        system=system.name,
        round=round_no,
        rps=result.rps,
        p50_ms=result.p50_ms,
        p99_ms=result.p99_ms,
        requests=result.requests,
        accepted=accepted,
        failed=result.failed,
        socket_errors=result.socket_errors,
        executed=len(delays),
        backlog_at_end=backlog,
        drain_s=drain_s,
        start_delay_p50_ms=statistics.median(delays) * 1000 if delays else None,
        start_delay_p99_ms=percentile(delays, 0.99) * 1000 if delays else None,
        cpu_ms_per_request=cpu_used * 1000 / max(1, result.requests),
        peak_rss_mb=procs.peak_rss_mb(server_pid),
        placement=settings.placement,
    )
