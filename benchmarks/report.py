"""Medians over rounds, ratios against the baseline, and the markdown, PNG and JSON outputs."""

from __future__ import annotations

import json
import os
import platform
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path

from benchmarks.measure import Measurement
from benchmarks.systems import BASELINE, System

PLACEMENT_TEXT = {
    "shared": "one core (0) for the web process and whatever runs its tasks (in-app runner, or "
    "a worker process pinned beside it); the load generator on core 1",
    "split": "the web process alone on core 0; worker processes on core 1 with the load "
    "generator, which runs at a higher priority (nice -10) so that it keeps the load up and the "
    "workers take what is left; only the systems with a worker process, and the baseline, "
    "are measured here (the others are placed as in `shared`)",
    "shared_h11": "as `shared`, with uvicorn on `--loop asyncio --http h11` (the other placements: "
    "uvloop + httptools); only the systems whose tasks run in the web process, and the baseline",
}

PACKAGES = (
    "afterwork",
    "fastapi",
    "starlette",
    "pydantic",
    "uvicorn",
    "uvloop",
    "httptools",
    "arq",
    "taskiq",
    "taskiq-redis",
    "pgqueuer",
    "asyncpg",
    "redis",
    "celery",
    "kombu",
    "dramatiq",
    "procrastinate",
    "psycopg",
)


@dataclass
class Outcome:
    """Everything one system produced in a run."""

    system: System
    placement: str = "shared"  # measure.PLACEMENTS
    measurements: list[Measurement] = field(default_factory=list)
    not_run: str | None = None  # why it was skipped (not installed, no server)
    errors: list[str] = field(default_factory=list)  # measurements that failed


@dataclass(frozen=True)
class Row:
    name: str
    placement: str
    rps: float
    rps_ratio: float | None
    p50_ms: float
    p99_ms: float
    p99_ratio: float | None
    accepted: int
    executed: int
    failed_requests: int  # non-2xx/3xx responses and socket errors, over rounds
    drain_s: float | None  # median; None when some round never drained
    undrained_rounds: int
    start_p50_ms: float | None
    start_p99_ms: float | None
    cpu_ms_per_request: float
    peak_rss_mb: float
    rps_min: float
    rps_max: float


def _median_ratio(rounds: list[Measurement], base: dict[int, Measurement], key: str) -> float | None:
    """Median over rounds of this system's figure divided by the baseline's in the same round."""
    ratios = [
        getattr(m, key) / getattr(base[m.round], key)
        for m in rounds
        if m.round in base and getattr(base[m.round], key) > 0
    ]
    return statistics.median(ratios) if ratios else None


def _median_of(values: list[float | None]) -> float | None:
    present = [value for value in values if value is not None]
    return statistics.median(present) if present else None


def rows(outcomes: list[Outcome]) -> list[Row]:
    """One row per system and placement; ratios against the baseline in the same placement."""
    table = []
    for outcome in outcomes:
        ms = outcome.measurements
        if not ms:
            continue
        base = {
            m.round: m
            for o in outcomes
            if o.system.name == BASELINE and o.placement == outcome.placement
            for m in o.measurements
        }
        drains = [m.drain_s for m in ms]
        table.append(
            Row(
                name=outcome.system.name,
                placement=outcome.placement,
                rps=statistics.median(m.rps for m in ms),
                rps_ratio=_median_ratio(ms, base, "rps"),
                p50_ms=statistics.median(m.p50_ms for m in ms),
                p99_ms=statistics.median(m.p99_ms for m in ms),
                p99_ratio=_median_ratio(ms, base, "p99_ms"),
                accepted=sum(m.accepted for m in ms),
                executed=sum(m.executed for m in ms),
                failed_requests=sum(m.failed + m.socket_errors for m in ms),
                drain_s=None if None in drains else _median_of(drains),
                undrained_rounds=drains.count(None),
                start_p50_ms=_median_of([m.start_delay_p50_ms for m in ms]),
                start_p99_ms=_median_of([m.start_delay_p99_ms for m in ms]),
                cpu_ms_per_request=statistics.median(m.cpu_ms_per_request for m in ms),
                peak_rss_mb=statistics.median(m.peak_rss_mb for m in ms),
                rps_min=min(m.rps for m in ms),
                rps_max=max(m.rps for m in ms),
            )
        )
    return table


def machine() -> dict[str, str]:
    meminfo = Path("/proc/meminfo").read_text().split()
    memory_gib = int(meminfo[meminfo.index("MemTotal:") + 1]) / 2**20
    models = [
        line.split(":", 1)[1].strip()
        for line in Path("/proc/cpuinfo").read_text().splitlines()
        if line.startswith("model name")
    ]
    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return {
        "cpus": str(os.cpu_count()),
        "cpu_model": models[0] if models else platform.processor(),
        "memory": f"{memory_gib:.1f} GiB",
        "kernel": platform.release(),
        "python": platform.python_version(),
        "packages": ", ".join(f"{name} {version}" for name, version in versions.items()),
    }


FLUSH_WRITES = 200  # a tenth of a second at most on this machine


def disk_flush_us(directory: str | None = None, writes: int = FLUSH_WRITES) -> float:
    """The median microseconds of one 4 kB append and `fdatasync` to a new file in
    `directory` (default: the temporary directory, where the harness puts the SQLite systems'
    files): at least what each SQLite commit with `synchronous=FULL` waits for. On a virtual
    machine it moves during a day (127 µs, then 201 µs an 8 kB flush on one machine within an
    hour), and with it every durable system's requests/s, so each run records it."""
    sync = getattr(os, "fdatasync", os.fsync)  # macOS has no fdatasync
    block, times = b"\0" * 4096, []
    with tempfile.TemporaryDirectory(prefix="afterwork-flush-", dir=directory) as where:
        fd = os.open(os.path.join(where, "flush"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            for _ in range(writes):
                began = time.perf_counter()
                os.write(fd, block)
                sync(fd)
                times.append(time.perf_counter() - began)
        finally:
            os.close(fd)
    return statistics.median(times) * 1e6


def flush_text(before_us: float, after_us: float) -> str:
    """The run's disk, as its header says it."""
    return (f"a 4 kB append + fdatasync in the temporary directory took {before_us:,.0f} µs "
            f"(median of {FLUSH_WRITES}) before the run, {after_us:,.0f} µs after it")


def _num(value: float | None, digits: int = 1, suffix: str = "") -> str:
    return "-" if value is None else f"{value:,.{digits}f}{suffix}"


def _tasks(row: Row) -> str:
    failed = f" (**{row.failed_requests:,} failed requests**)" if row.failed_requests else ""
    return f"{row.executed:,} / {row.accepted:,}{failed}"


def _drain(row: Row, rounds: int, timeout: float) -> str:
    if row.drain_s is not None:
        return _num(row.drain_s, 2)
    return f"not within {timeout:g} s in {row.undrained_rounds}/{rounds} rounds"


def markdown(outcomes: list[Outcome], meta: dict[str, str], chart: Path | None, doc: Path) -> str:
    rounds, timeout = int(meta["rounds"]), float(meta["drain_timeout"])
    lines = [
        "# Benchmarks",
        "",
        f"Written by `benchmarks/run.py` on {meta['date']}; see `benchmarks/README.md` for how "
        "to run it and how to read the figures.",
        "",
        f"- command: `{meta['command']}`",
        f"- machine: {meta['cpus']} cores ({meta['cpu_model']}), {meta['memory']}, "
        f"Linux {meta['kernel']}, Python {meta['python']}",
        f"- load: {meta['load']}",
        *([f"- disk: {meta['disk']}"] if meta.get("disk") else []),
        f"- rounds: {rounds}, systems interleaved within each round; every figure is the median "
        f"over rounds, each ratio the median of per-round ratios against `{BASELINE}` "
        "(task counts are totals over rounds)",
        f"- packages: {meta['packages']}",
    ]
    for placement in dict.fromkeys(o.placement for o in outcomes):
        lines += ["", f"### Placement `{placement}`: {PLACEMENT_TEXT.get(placement, placement)}", ""]
        lines += _table([row for row in rows(outcomes) if row.placement == placement], rounds, timeout)
    lines += ["", "Systems:", ""]
    seen: set[str] = set()
    for outcome in outcomes:
        if outcome.system.name in seen and not outcome.errors:
            continue
        seen.add(outcome.system.name)
        status = f" — **not run: {outcome.not_run}**" if outcome.not_run else ""
        failures = (
            f" — **{len(outcome.errors)} failed run(s) ({outcome.placement})**: {'; '.join(outcome.errors)}"
        )
        lines.append(
            f"- `{outcome.system.name}`: {outcome.system.description}{status}"
            + (failures if outcome.errors else "")
        )
    if chart is not None:
        lines += ["", f"![requests/s and p99 latency per system]({os.path.relpath(chart, doc.parent)})"]
    return "\n".join(lines) + "\n"


README_START = "<!-- request-path table: written by benchmarks/run.py, do not edit by hand -->"
README_END = "<!-- end of the request-path table -->"


def readme_block(outcomes: list[Outcome], meta: dict[str, str]) -> str:
    """The README's request-path table: both placements, with the run's date, machine and
    command, so that the README quotes the harness and nothing typed by hand."""
    rounds, timeout = int(meta["rounds"]), float(meta["drain_timeout"])
    lines = [
        README_START,
        f"Run on {meta['date']} ({meta['cpus']} cores, {meta['cpu_model']}, {meta['memory']}; "
        f"`{meta['command']}`; {meta['load']}; medians of {rounds} interleaved rounds"
        + (f"; disk: {meta['disk']}" if meta.get("disk") else "") + "):",
    ]
    for placement in dict.fromkeys(o.placement for o in outcomes):
        lines += ["", f"Placement `{placement}`: {PLACEMENT_TEXT.get(placement, placement)}", ""]
        lines += _table([row for row in rows(outcomes) if row.placement == placement], rounds, timeout)
    return "\n".join([*lines, README_END])


def write_readme_block(path: Path, block: str) -> bool:
    """Replace the README's table between its markers; False (README untouched) if the
    README has no markers."""
    text = path.read_text()
    start, end = text.find(README_START), text.find(README_END)
    if start < 0 or end < start:
        return False
    path.write_text(text[:start] + block + text[end + len(README_END):])
    return True


def _table(table: list[Row], rounds: int, timeout: float) -> list[str]:
    lines = [
        f"| system | req/s | x {BASELINE} | p50 ms | p99 ms | p99 x {BASELINE} | "
        "tasks run / accepted | drain s | enqueue-to-start p50 / p99 ms | CPU ms/req | peak RSS MiB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in table:
        lines.append(
            f"| {row.name} | {row.rps:,.0f} | {_num(row.rps_ratio, 2, 'x')} | "
            f"{row.p50_ms:.1f} | {row.p99_ms:.1f} | {_num(row.p99_ratio, 2, 'x')} | "
            f"{_tasks(row)} | {_drain(row, rounds, timeout)} | "
            f"{_num(row.start_p50_ms)} / {_num(row.start_p99_ms)} | "
            f"{row.cpu_ms_per_request:.2f} | {row.peak_rss_mb:.0f} |"
        )
    return lines


def write_chart(outcomes: list[Outcome], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = rows(outcomes)[::-1]  # first system on top
    several = len({row.placement for row in table}) > 1
    names = [f"{row.name} ({row.placement})" if several else row.name for row in table]
    colors = [
        "tab:orange"
        if row.name.startswith("afterwork")
        else "tab:gray"
        if row.name == "no_task" or row.name.startswith("fastapi")
        else "tab:blue"
        for row in table
    ]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 0.5 * len(table) + 1.6), sharey=True)
    left.barh(
        names,
        [row.rps for row in table],
        xerr=[[row.rps - row.rps_min for row in table], [row.rps_max - row.rps for row in table]],
        color=colors,
    )
    for y, row in enumerate(table):
        ratio = "" if row.rps_ratio is None else f" {row.rps_ratio:.2f}x"
        behind = ", tasks not drained" if row.undrained_rounds else ""
        left.text(row.rps_max, y, ratio + behind, va="center", fontsize=9)
    left.set_xlabel("requests/s (median, whiskers: min-max over rounds)")
    left.margins(x=0.3)
    right.barh(names, [row.p99_ms for row in table], color=colors)
    for y, row in enumerate(table):
        right.text(row.p99_ms, y, f" {row.p99_ms:.0f}", va="center", fontsize=9)
    right.margins(x=0.12)
    right.set_xlabel("p99 latency, ms (median over rounds)")
    fig.suptitle(f"POST /abcd, one task per request; ratios against {BASELINE}")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_json(outcomes: list[Outcome], meta: dict[str, str], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "meta": meta,
        "systems": {
            f"{o.system.name}/{o.placement}": {
                "description": o.system.description,
                "not_run": o.not_run,
                "errors": o.errors,
                "measurements": [asdict(m) for m in o.measurements],
            }
            for o in outcomes
        },
        "summary": [asdict(row) for row in rows(outcomes)],
    }
    path.write_text(json.dumps(data, indent=2) + "\n")
