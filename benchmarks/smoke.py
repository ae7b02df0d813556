"""A short benchmark smoke for CI: afterwork (SQLite, in-app runner) against FastAPI's
in-memory BackgroundTasks, a few seconds each, interleaved; it PRINTS the ratios and never
judges them.

    python benchmarks/smoke.py                  # 3 rounds of 3 s per system, about a minute
    python benchmarks/smoke.py --against ../before/src   # and afterwork from another tree
    python benchmarks/smoke.py --system afterwork_pg --against ../before/src   # on PostgreSQL

`--against SRC` adds a third run per round: the same app with afterwork imported from SRC (the
`src` folder of another checkout, e.g. `git worktree add ../before HEAD~1`), so a change's
effect is a ratio measured in one interleaved run.

Speed on a shared CI machine is noise, so nothing here is asserted: the exit status is 0
whatever the figures, and non-zero only when no round measured both systems (the harness or
an app is broken: that is a bug, not a slow run). Uses wrk when installed, else the Python
load generator; app on core 0, load on core 1, as `benchmarks/run.py --placement shared`.
Writes nothing into the repository (logs go to a temporary directory).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the ``benchmarks`` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import load, report, systems
from benchmarks.measure import Measurement, Settings, measure, placed


def server_stack() -> str:
    """What uvicorn picks here: uvloop + httptools when installed, else asyncio + h11, unless
    UVICORN_LOOP / UVICORN_HTTP say otherwise (uvicorn reads them: `UVICORN_LOOP=asyncio
    UVICORN_HTTP=h11 python benchmarks/smoke.py` measures the other stack)."""
    import importlib.util

    def have(module: str) -> bool:
        return importlib.util.find_spec(module) is not None

    loop = os.environ.get("UVICORN_LOOP") or ("uvloop" if have("uvloop") else "asyncio")
    http = os.environ.get("UVICORN_HTTP") or ("httptools" if have("httptools") else "h11")
    return f"--loop {loop} --http {http}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=3, help="seconds of load per run")
    parser.add_argument("--load", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument("--against", type=Path, help="another tree's src/: afterwork from there too")
    parser.add_argument("--system", default="afterwork_sqlite",
                        help="the afterwork system of benchmarks/systems.py (afterwork_pg: PostgreSQL)")
    args = parser.parse_args()
    pair = (systems.BASELINE, args.system)
    started = time.monotonic()
    chosen = systems.select(list(pair))
    os.sched_setaffinity(0, {1} if (os.cpu_count() or 1) > 1 else {0})
    cores = os.cpu_count() or 1
    settings = placed(
        Settings(load_tool=load.generator(args.load), connections=32, duration=args.duration,
                 warmup=1, drain_timeout=20, server_cpu=0, worker_cpu=0, load_cpu=1,
                 redis_url="", pg_url=systems.PG_URL if systems.POSTGRES in chosen[-1].services else ""),
        "shared",
    )
    if cores < 2:  # the pinning assumes two cores; on one, everything shares core 0
        settings = replace(settings, load_cpu=0)
    print(f"benchmark smoke: {', '.join(pair)}; {args.rounds} rounds x {args.duration} s, "
          f"{settings.load_tool} load, uvicorn {server_stack()}, {cores} cores; a 4 kB append + "
          f"fdatasync {report.disk_flush_us():,.0f} µs (SQLite's commit waits for one)", flush=True)
    runs = [(system.name, system, None) for system in chosen]
    if args.against:
        runs.append((f"{pair[1]}@against", chosen[-1], args.against.resolve()))
    measured: dict[int, dict[str, Measurement]] = {}
    with tempfile.TemporaryDirectory(prefix="afterwork-smoke-") as logs:
        for round_no in range(1, args.rounds + 1):
            for label, system, source in runs:
                where = Path(logs) / label
                where.mkdir(exist_ok=True)
                try:
                    with _importing_from(source):
                        m = measure(system, round_no, settings, where)
                except Exception:  # reported, never fatal on its own
                    traceback.print_exc()
                    continue
                measured.setdefault(round_no, {})[label] = m
                print(f"round {round_no} {label:<26} {m.rps:8,.0f} req/s  p50 {m.p50_ms:5.1f} ms  "
                      f"p99 {m.p99_ms:6.1f} ms  tasks {m.executed:,}/{m.accepted:,}  enqueue-to-start p50 "
                      f"{m.start_delay_p50_ms or 0:.1f} ms", flush=True)
    if args.against:
        against = [(r[f"{pair[1]}@against"], r[pair[0]], r[pair[1]]) for r in measured.values()
                   if len(r) == 3]
        if against:
            print(f"benchmark smoke: afterwork from {args.against} / fastapi_async requests/s "
                  f"{statistics.median(a.rps / b.rps for a, b, _ in against):.2f}x, p99 "
                  f"{statistics.median(a.p99_ms / b.p99_ms for a, b, _ in against):.2f}x; this "
                  f"tree / that one requests/s "
                  f"{statistics.median(t.rps / a.rps for a, _, t in against):.2f}x "
                  f"(medians of {len(against)} per-round ratios)")
    pairs = [(r[pair[1]], r[pair[0]]) for r in measured.values() if pair[1] in r and pair[0] in r]
    if not pairs:
        print("benchmark smoke: no round measured both systems (see the errors above)")
        return 1
    rps = statistics.median(aw.rps / base.rps for aw, base in pairs)
    p99 = statistics.median(aw.p99_ms / base.p99_ms for aw, base in pairs)
    lost = sum(max(0, aw.accepted - aw.executed) for aw, _ in pairs)
    print(f"benchmark smoke: {pair[1]} / fastapi_async requests/s {rps:.2f}x, p99 {p99:.2f}x "
          f"(median of {len(pairs)} per-round ratios; informational, not asserted; "
          f"afterwork tasks accepted but not run: {lost}) in {time.monotonic() - started:.0f} s")
    return 0


@contextlib.contextmanager
def _importing_from(source: Path | None) -> Iterator[None]:
    """The app's processes import afterwork from `source` (None: this tree's install)."""
    if source is None:
        yield
        return
    before = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(source), before]))
    try:
        yield
    finally:
        if before is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = before


if __name__ == "__main__":
    sys.exit(main())
