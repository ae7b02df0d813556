"""The benchmark harness's arithmetic and documents (benchmarks/): ratios compare runs of the
same round and placement, and a re-run rewrites its own section instead of piling up copies."""

from __future__ import annotations

from pathlib import Path

from benchmarks import report, systems
from benchmarks.drain import lineup, table
from benchmarks.drain.compare import Case
from benchmarks.measure import Measurement


def _m(system: str, round_no: int, rps: float, p99: float, placement: str) -> Measurement:
    return Measurement(system=system, round=round_no, rps=rps, p50_ms=1.0, p99_ms=p99,
                       requests=int(rps), accepted=int(rps), failed=0, socket_errors=0,
                       executed=int(rps), backlog_at_end=0, drain_s=0.0, start_delay_p50_ms=1.0,
                       start_delay_p99_ms=2.0, cpu_ms_per_request=0.3, peak_rss_mb=50.0,
                       placement=placement)


def _outcome(name: str, placement: str, figures: list[tuple[float, float]]) -> report.Outcome:
    outcome = report.Outcome(systems.select([name])[0], placement)
    outcome.measurements = [_m(name, r, rps, p99, placement) for r, (rps, p99) in enumerate(figures, 1)]
    return outcome


def test_each_placement_is_compared_with_its_own_baseline_runs() -> None:
    outcomes = [
        _outcome("fastapi_async", "shared", [(1000, 10), (800, 10)]),
        _outcome("dramatiq_redis", "shared", [(500, 20), (400, 30)]),
        _outcome("fastapi_async", "split", [(2000, 10), (2000, 10)]),
        _outcome("dramatiq_redis", "split", [(1000, 10), (1500, 20)]),
    ]
    ratios = {(row.name, row.placement): (row.rps_ratio, row.p99_ratio) for row in report.rows(outcomes)}
    assert ratios[("dramatiq_redis", "shared")] == (0.5, 2.5)  # medians of (0.5, 0.5), (2, 3)
    assert ratios[("dramatiq_redis", "split")] == (0.625, 1.5)  # of (0.5, 0.75), (1, 2)


def test_the_other_server_stack_is_measured_for_the_in_app_systems_only() -> None:
    from benchmarks.measure import STACKS
    from benchmarks.run import _placed_there

    assert STACKS["shared_h11"] == {"UVICORN_LOOP": "asyncio", "UVICORN_HTTP": "h11"}
    assert "shared" not in STACKS and "split" not in STACKS  # uvicorn's pick: uvloop + httptools
    there = {s.name for s in systems.SYSTEMS if _placed_there(s, "shared_h11")}
    assert {"fastapi_async", "afterwork_sqlite", "afterwork_sqlite_normal", "afterwork_pg"} <= there
    assert {"durable_floor", "durable_floor_table", "durable_floor_pg"} <= there  # the references
    assert not {"afterwork_sqlite_worker", "dramatiq_redis", "pgqueuer_pg"} & there
    split = {s.name for s in systems.SYSTEMS if _placed_there(s, "split")}
    assert "fastapi_async" in split and "afterwork_sqlite" not in split and "dramatiq_redis" in split
    assert "durable_floor" not in split


def test_benchmarks_page_has_one_table_per_placement() -> None:
    outcomes = [_outcome("fastapi_async", p, [(1000, 10)]) for p in ("shared", "split")]
    meta = {"rounds": "1", "drain_timeout": "30", "date": "d", "command": "c", "cpus": "2",
            "cpu_model": "x", "memory": "1 GiB", "kernel": "k", "python": "3", "packages": "",
            "load": "wrk"}
    page = report.markdown(outcomes, meta, None, Path("docs/benchmarks.md"))
    assert "### Placement `shared`" in page and "### Placement `split`" in page
    assert page.count("| fastapi_async | 1,000 | 1.00x") == 2


def test_the_readmes_table_is_rewritten_between_its_markers_only(tmp_path: Path) -> None:
    outcomes = [_outcome(name, p, [(1000, 10)]) for p in ("shared", "split")
                for name in ("fastapi_async", "dramatiq_redis")]
    meta = {"rounds": "1", "drain_timeout": "30", "date": "2026-12-02 05:30 UTC", "command": "c",
            "cpus": "2", "cpu_model": "x", "memory": "1 GiB", "load": "wrk"}
    readme = tmp_path / "README.md"
    readme.write_text(f"before\n{report.README_START}\nold table\n{report.README_END}\nafter\n")
    assert report.write_readme_block(readme, report.readme_block(outcomes, meta))
    text = readme.read_text()
    assert text.startswith("before\n") and text.endswith("\nafter\n") and "old table" not in text
    assert "Run on 2026-12-02 05:30 UTC" in text and "`c`" in text
    assert "Placement `shared`" in text and "Placement `split`" in text
    assert text.count("| dramatiq_redis | 1,000 | 1.00x") == 2
    unmarked = tmp_path / "OTHER.md"
    unmarked.write_text("no markers\n")
    assert not report.write_readme_block(unmarked, "x")
    assert unmarked.read_text() == "no markers\n"


def _case(system: str, kind: str, workers: int, round_no: int, rate: float | None) -> Case:
    return Case(system, kind, workers, round_no, 100, rate, 100 if rate else 0, 0.5, 0.1,
                "" if rate else "stalled")


def test_drain_ratios_are_against_the_fastest_postgres_peer_of_each_round() -> None:
    chosen = lineup.select(["afterwork_pg", "pgqueuer_pg", "procrastinate_pg", "dramatiq_redis"])
    cases = [
        _case("afterwork_pg", "noop", 1, 1, 3000), _case("afterwork_pg", "noop", 1, 2, 1000),
        _case("pgqueuer_pg", "noop", 1, 1, 2000), _case("pgqueuer_pg", "noop", 1, 2, 1000),
        _case("procrastinate_pg", "noop", 1, 1, 100), _case("procrastinate_pg", "noop", 1, 2, 100),
        # a Redis peer is faster, but the yardstick is the fastest PostgreSQL peer
        _case("dramatiq_redis", "noop", 1, 1, 9000), _case("dramatiq_redis", "noop", 1, 2, None),
    ]
    assert table.fastest_pg_peer(cases, chosen, "noop", 1) == "pgqueuer_pg"
    assert table.cell(cases, "afterwork_pg", "noop", 1, "pgqueuer_pg", 2) == "2,000 (1.25x)"
    assert table.cell(cases, "dramatiq_redis", "noop", 1, "pgqueuer_pg", 2) == (
        "9,000 (4.50x) [1 round(s) failed]")


def test_drain_section_is_rewritten_in_place(tmp_path: Path) -> None:
    doc = tmp_path / "more.md"
    doc.write_text("# Other measurements\n\nkept\n")
    table.write_section(doc, f"{table.START}\nfirst run\n{table.END}\n")
    table.write_section(doc, f"{table.START}\nsecond run\n{table.END}\n")
    text = doc.read_text()
    assert text.startswith("# Other measurements\n\nkept\n")
    assert "second run" in text and "first run" not in text
    assert text.count(table.START) == 1


def test_each_run_says_how_long_its_disk_took_to_flush(tmp_path: Path) -> None:
    """A real file on this machine's disk: the figure every SQLite commit with
    synchronous=FULL waits for, in the header of the page and of the README's table."""
    flush = report.disk_flush_us(str(tmp_path), writes=20)
    assert flush > 0
    assert list(tmp_path.iterdir()) == []  # its file is gone
    disk = report.flush_text(flush, 2 * flush)
    assert f"{flush:,.0f} µs (median of 200) before the run, {2 * flush:,.0f} µs after it" in disk
    outcomes = [_outcome("fastapi_async", "shared", [(1000, 10)])]
    meta = {"rounds": "1", "drain_timeout": "30", "date": "d", "command": "c", "cpus": "2",
            "cpu_model": "x", "memory": "1 GiB", "kernel": "k", "python": "3", "packages": "",
            "load": "wrk", "disk": disk}
    assert f"- disk: {disk}\n" in report.markdown(outcomes, meta, None, Path("docs/benchmarks.md"))
    assert f"; disk: {disk}):" in report.readme_block(outcomes, meta)
    del meta["disk"]  # a run recorded before the disk was: no such line
    assert "disk" not in report.markdown(outcomes, meta, None, Path("docs/benchmarks.md"))
