"""The side-by-side drain's report: medians, ratios against the fastest PostgreSQL peer, and
the markdown section it keeps in docs/benchmarks-more.md."""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from benchmarks import report
from benchmarks.drain.lineup import DrainSystem

START = "<!-- drain-compare:start (written by `python -m benchmarks.drain.compare`) -->"
END = "<!-- drain-compare:end -->"
KIND_LABELS = {"noop": "no-op", "sleep10": "10 ms"}


class CaseLike(Protocol):
    system: str
    kind: str
    workers: int
    round: int
    rate: float | None
    error: str


def meta(stamp: datetime, command: str, rounds: int, counts: dict[str, int],
         concurrency: int, load: tuple[float, float]) -> dict[str, Any]:
    """`load`: the 1-minute load average before the first case and after the last."""
    return {"date": f"{stamp:%Y-%m-%d %H:%M} UTC", "command": command, "rounds": rounds,
            "tasks": counts, "concurrency": concurrency, "load": list(load), **report.machine()}


def _machine_was(meta: dict[str, Any]) -> str:
    """What the load average says about the run (runs before it was recorded say nothing)."""
    load = meta.get("load")
    if not load:
        return ""
    before, after = load
    text = f"; load average {before:.2f} before the first case and {after:.2f} after the last"
    if before > meta["cpus"] / 2:
        text += (" (other work was running: it depresses every absolute figure alike; read the "
                 "ratios, which compare systems measured in the same rounds)")
    return text


def to_json(meta: dict[str, Any], cases: list[dict[str, Any]]) -> str:
    return json.dumps({"meta": meta, "cases": cases}, indent=2) + "\n"


def _rates(cases: Sequence[CaseLike], system: str, kind: str, workers: int) -> dict[int, float]:
    return {c.round: c.rate for c in cases
            if (c.system, c.kind, c.workers) == (system, kind, workers) and c.rate}


def fastest_pg_peer(cases: Sequence[CaseLike], systems: list[DrainSystem], kind: str,
                    workers: int) -> str | None:
    """The PostgreSQL peer with the highest median rate in this column, if any ran."""
    medians = {s.name: statistics.median(r.values()) for s in systems
               if s.peer and s.store == "PostgreSQL" and (r := _rates(cases, s.name, kind, workers))}
    return max(medians, key=medians.__getitem__) if medians else None


def cell(cases: Sequence[CaseLike], system: str, kind: str, workers: int, against: str | None,
         rounds: int) -> str:
    rates = _rates(cases, system, kind, workers)
    if not rates:
        errors = [c.error for c in cases if (c.system, c.kind, c.workers) == (system, kind, workers)]
        return f"failed: {errors[0]}" if errors and errors[0] else "-"
    text = f"{statistics.median(rates.values()):,.0f}"
    base = _rates(cases, against, kind, workers) if against else {}
    ratios = [rate / base[r] for r, rate in rates.items() if r in base]
    if ratios:
        text += f" ({statistics.median(ratios):.2f}x)"
    if len(rates) < rounds:
        text += f" [{rounds - len(rates)} round(s) failed]"
    return text


def markdown(cases: Sequence[CaseLike], systems: list[DrainSystem], kinds: list[str],
             workers: list[int], meta: dict[str, Any]) -> str:
    columns = [(k, w) for k in kinds for w in workers]
    against = {col: fastest_pg_peer(cases, systems, *col) for col in columns}
    counts = ", ".join(f"{meta['tasks'][k]:,} {KIND_LABELS[k]}" for k in kinds)
    head = " | ".join(f"{KIND_LABELS[k]}, {w} worker{'s' if w > 1 else ''}" for k, w in columns)
    lines = [
        START,
        "## Draining side by side with the peers",
        "",
        f"Measured on {meta['date']}, {meta['cpus']} cores ({meta['cpu_model']}), "
        f"{meta['memory']}, Python {meta['python']}{_machine_was(meta)}.",
        "",
        f"- command: `{meta['command']}`",
        f"- backlog per case: {counts} tasks, enqueued before any worker starts (not timed); "
        f"each worker process runs {meta['concurrency']} tasks at once; worker *n* pinned to "
        "core *n* mod 2; Redis and PostgreSQL not pinned",
        f"- {meta['rounds']} rounds, every case once per round, interleaved; figures are medians "
        "over rounds; ratios (in parentheses) are medians of per-round ratios against the "
        "fastest PostgreSQL peer of that column",
        "- counted the same way for every system: each task appends its finishing time to one "
        "file; tasks/s = tasks between the first and the last completion / the time between "
        "them (start-up of the workers is not counted)",
        f"- packages: {meta['packages']}",
        "",
        "tasks/s, median (x the fastest PostgreSQL peer):",
        "",
        f"| system | store | {head} |",
        "|---|---|" + "---:|" * len(columns),
    ]
    for s in systems:
        cells = " | ".join(cell(cases, s.name, k, w, against[(k, w)], meta["rounds"]) for k, w in columns)
        lines.append(f"| {s.name} | {s.store} | {cells} |")
    named = ", ".join(f"{KIND_LABELS[k]} x{w}: `{against[(k, w)] or 'none'}`" for k, w in columns)
    lines += ["", f"Fastest PostgreSQL peer per column (the 1.00x): {named}.", "", END]
    return "\n".join(lines) + "\n"


def write_section(doc: Path, section: str) -> None:
    """Replace the drain section of `doc` (between its markers), or append it."""
    text = doc.read_text() if doc.exists() else ""
    if START in text and END in text:
        before, rest = text.split(START, 1)
        after = rest.split(END, 1)[1]
        text = before + section.rstrip("\n") + after
    else:
        text = text.rstrip("\n") + "\n\n" + section
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(text)
