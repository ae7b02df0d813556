"""Benchmark afterwork against FastAPI's in-memory BackgroundTasks and the durable peers.

One command, from the repository root, in a venv holding the package and the peers:

    python benchmarks/run.py --rounds 3 --duration 10

Each system (benchmarks/systems.py) serves POST /abcd from one uvicorn worker on core 0; wrk
(or the Python fallback) loads it from core 1. Peers' workers (and `afterwork worker`) run on
core 0 beside the app (placement `shared`) or on core 1 (placement `split`); placement
`shared_h11` is `shared` with uvicorn on asyncio + h11 instead of uvloop + httptools, for the
systems whose tasks run in the web process; see measure.PLACEMENTS. Systems and placements
are interleaved in every round and the report takes medians. Writes docs/benchmarks.md,
docs/benchmarks.png, a JSON file in benchmarks/results/ and the README's request-path table
(between its markers; paths configurable, see --help).
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the ``benchmarks`` package importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import load, report, systems
from benchmarks.measure import PLACEMENTS, ROOT, Settings, measure, placed


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--rounds", type=int, default=3, help="runs per system, interleaved (default 3)")
    add("--duration", type=int, default=10, help="seconds of load per run (default 10)")
    add("--warmup", type=int, default=1, help="seconds of unmeasured load first, 0: none (default 1)")
    add("--connections", type=int, default=32, help="concurrent connections (default 32)")
    add("--drain-timeout", type=float, default=30, help="max seconds to wait for tasks (default 30)")
    add("--systems", help="comma-separated names (default: all); see benchmarks/systems.py")
    add("--load", choices=("auto", "wrk", "python"), default="auto", help="load generator")
    add(
        "--placement",
        default="shared,split,shared_h11",
        help="comma-separated: shared (app and its workers on core 0, load on core 1), split "
        "(app alone on core 0; workers and load on core 1), shared_h11 (shared, uvicorn on "
        "asyncio + h11, in-app systems only); default all three",
    )
    add("--redis-url", default="redis://127.0.0.1:6379/9", help="Redis for the peers (db flushed)")
    add(
        "--pg-url",
        default=systems.PG_URL,
        help="PostgreSQL for the peers (database created if missing, its queue tables emptied)",
    )
    add("--markdown", type=Path, default=ROOT / "docs" / "benchmarks.md")
    add("--readme", type=Path, default=ROOT / "README.md",
        help="the README whose request-path table (between its markers) is rewritten")
    add("--chart", type=Path, default=ROOT / "docs" / "benchmarks.png")
    add("--results-dir", type=Path, default=ROOT / "benchmarks" / "results")
    return parser.parse_args()


def run_rounds(outcomes: list[report.Outcome], rounds: int, settings: Settings, logs: Path) -> None:
    """Measure every available system once per round and placement, in table order, round
    after round."""
    for round_no in range(1, rounds + 1):
        for outcome in (o for o in outcomes if not o.not_run):
            started = time.monotonic()
            try:
                m = measure(outcome.system, round_no, placed(settings, outcome.placement), logs)
            except Exception as error:  # one failed run is reported, the others go on
                outcome.errors.append(f"round {round_no}: {error}")
                traceback.print_exc()
                continue
            outcome.measurements.append(m)
            drain = "not drained" if m.drain_s is None else f"drained in {m.drain_s:.2f} s"
            print(
                f"round {round_no} {m.placement:<6} {m.system:<24} {m.rps:8,.0f} req/s  "
                f"p99 {m.p99_ms:6.1f} ms  "
                f"tasks {m.executed:,}/{m.accepted:,} {drain}  ({time.monotonic() - started:.0f} s)",
                flush=True,
            )


def _placed_there(system: systems.System, placement: str) -> bool:
    """split changes only where worker processes run: systems without one are as in shared;
    shared_h11 changes the web process's stack: measured where the tasks run in it."""
    if placement == "split":
        return bool(system.worker) or system.name == systems.BASELINE
    if placement == "shared_h11":
        return not system.worker
    return True


def main() -> None:
    args = parse_args()
    placements = args.placement.split(",")
    if unknown := [p for p in placements if p not in PLACEMENTS]:
        raise SystemExit(f"unknown placement(s) {unknown}; known: {', '.join(PLACEMENTS)}")
    os.sched_setaffinity(0, {1})  # keep the harness off the server's core (core 0)
    settings = Settings(
        load_tool=load.generator(args.load),
        connections=args.connections,
        duration=args.duration,
        warmup=args.warmup,
        drain_timeout=args.drain_timeout,
        server_cpu=0,
        worker_cpu=0,
        load_cpu=1,
        redis_url=args.redis_url,
        pg_url=args.pg_url,
    )
    stamp = datetime.now(timezone.utc)
    logs = args.results_dir / f"logs-{stamp:%Y%m%d-%H%M%S}"
    logs.mkdir(parents=True, exist_ok=True)
    names = args.systems.split(",") if args.systems else None
    chosen = systems.select(names)
    outcomes = [
        report.Outcome(system, placement)
        for placement in placements
        for system in chosen
        if _placed_there(system, placement)
    ]
    for outcome in outcomes:
        outcome.not_run = outcome.system.unavailable()
        if outcome.not_run:
            print(f"skip {outcome.system.name}: {outcome.not_run}", flush=True)
    flush_before = report.disk_flush_us()
    run_rounds(outcomes, args.rounds, settings, logs)
    flush_after = report.disk_flush_us()
    meta = {
        "date": f"{stamp:%Y-%m-%d %H:%M} UTC",
        "command": shlex.join(["python", *sys.argv]),
        "rounds": str(args.rounds),
        "drain_timeout": f"{args.drain_timeout:g}",
        "load": f"{settings.load_tool}, {args.connections} connections, {args.duration:g} s per "
        f"run after {args.warmup:g} s warm-up",
        "disk": report.flush_text(flush_before, flush_after),
        **report.machine(),
    }
    report.write_json(outcomes, meta, args.results_dir / f"{stamp:%Y%m%d-%H%M%S}.json")
    report.write_chart(outcomes, args.chart)
    args.markdown.parent.mkdir(parents=True, exist_ok=True)
    args.markdown.write_text(report.markdown(outcomes, meta, args.chart, args.markdown))
    if not report.write_readme_block(args.readme, report.readme_block(outcomes, meta)):
        print(f"{args.readme} has no request-path table markers: not rewritten")
    print(f"wrote {args.markdown}, {args.chart} and {args.results_dir}/{stamp:%Y%m%d-%H%M%S}.json")


if __name__ == "__main__":
    main()
