"""What a task returned, and how far it has got: stored on a real SQLite file and a real
PostgreSQL, waited for in this process and in another, shown to operators always and to the
public only when the task allows it; progress reports throttled to a few writes."""

from __future__ import annotations

import asyncio
import datetime as dt
import decimal
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from afterwork import (
    Afterwork,
    AfterworkWarning,
    NotStorableError,
    ResultTimeoutError,
    TaskFailedError,
    TaskNotFoundError,
    progress,
)
from afterwork._models import Changes
from afterwork.stores import Store
from tests.procs import ROOT

from . import result_tasks as rt


async def started(url: str, **options: Any) -> Afterwork:
    aw = Afterwork(url=url, **options)
    await aw.startup()
    return aw


def outputs_rows(aw: Afterwork) -> list[tuple[Any, ...]]:
    """The outputs table as stored (through the store's own reader)."""
    with aw.store._read() as cur:  # type: ignore[attr-defined]
        cur.execute("SELECT task_id, result, progress FROM afterwork_task_outputs ORDER BY task_id")
        return list(cur.fetchall())


def test_a_report_with_decimals_and_datetimes_round_trips(durable_url: str) -> None:
    async def main() -> None:
        aw = await started(durable_url)
        try:
            report = await aw.defer(rt.build_report, "2024-05").result(timeout=20)
            zoned = await aw.defer(rt.zoned_time).result(timeout=20)
            untyped = await aw.defer(rt.untyped_decimal).result(timeout=20)
        finally:
            await aw.shutdown()
        assert isinstance(report, rt.Report)
        assert report.total == decimal.Decimal("1200.40")
        assert report.lines[0].amount == decimal.Decimal("1200.10")
        assert report.made_at == rt.MADE_AT and report.made_at.microsecond == 123456
        assert isinstance(zoned, dt.datetime) and zoned.utcoffset() == dt.timedelta(hours=1)
        assert untyped == decimal.Decimal("3.14159265358979323846")  # no float on the way

    asyncio.run(main())


def test_a_task_returning_none_writes_no_output_row(durable_url: str) -> None:
    async def main() -> None:
        aw = await started(durable_url)
        try:
            handle = aw.defer(rt.returns_nothing)
            assert await handle.result(timeout=20) is None
            assert outputs_rows(aw) == []
            assert aw.store.get(handle.id).to_json()["result"] is None  # type: ignore[union-attr]
        finally:
            await aw.shutdown()

    asyncio.run(main())


def test_an_unstorable_result_is_recorded_as_such_the_task_succeeds_and_a_warning_names_it(
        durable_url: str) -> None:
    async def main() -> None:
        aw = await started(durable_url)
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                handle = aw.defer(rt.returns_a_lock)
                with pytest.raises(NotStorableError, match="could not be stored"):
                    await handle.result(timeout=20)
            record = aw.store.get(handle.id)
            assert record is not None and record.state.value == "succeeded"
            assert record.to_json()["result_error"]
            assert any(issubclass(w.category, AfterworkWarning) and "returns_a_lock" in str(w.message)
                       for w in caught)
        finally:
            await aw.shutdown()

    asyncio.run(main())


def test_waiting_on_a_failed_task_raises_with_its_error_and_a_timeout_says_so(
        durable_url: str, tmp_path: Path) -> None:
    async def main() -> None:
        aw = await started(durable_url)
        try:
            with pytest.raises(TaskFailedError, match="data source is gone") as failed:
                await aw.defer(rt.always_fails).result(timeout=20)
            assert "Traceback" in (failed.value.error or "")
            slow = aw.defer(rt.waits_for_file, str(tmp_path / "later"))
            with pytest.raises(ResultTimeoutError, match="not finished within"):
                await slow.result(timeout=0.3)
            (tmp_path / "later").touch()
            assert (await slow.result(timeout=20)).month == "2024-05"  # waiting again works
            with pytest.raises(TaskNotFoundError):
                await aw.result("no-such-task", timeout=1)
        finally:
            await aw.shutdown()

    asyncio.run(main())


def test_a_cancelled_task_raises_when_waited_for(durable_url: str) -> None:
    from afterwork import TaskCancelledError

    async def main() -> None:
        aw = await started(durable_url, run_in_app=False)
        try:
            handle = await asyncio.to_thread(aw.defer, rt.returns_nothing)  # written on return
            await asyncio.to_thread(aw.cancel, handle.id)
            with pytest.raises(TaskCancelledError, match="cancelled"):
                await handle.result(timeout=5)
        finally:
            await aw.shutdown()

    asyncio.run(main())


def test_a_handle_waiting_in_another_process_sees_the_result(durable_url: str,
                                                             tmp_path: Path) -> None:
    gate = tmp_path / "go"

    async def main() -> None:
        aw = await started(durable_url)
        try:
            handle = aw.defer(rt.waits_for_file, str(gate))
            waiter = subprocess.Popen(
                [sys.executable, "-m", "tests.integration.result_tasks", durable_url, handle.id],
                cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            try:
                await asyncio.sleep(1.0)  # the other process waits for a task still running
                assert waiter.poll() is None
                gate.touch()
                out, err = await asyncio.to_thread(waiter.communicate, timeout=40)
            finally:
                if waiter.poll() is None:
                    waiter.kill()
                    waiter.wait(10)
            assert waiter.returncode == 0, err
            kind, _, body = out.strip().partition(" ")
            assert kind == "Report"  # rebuilt through the return annotation over there
            assert '"total":"9.99"' in body
        finally:
            await aw.shutdown()

    asyncio.run(main())


def test_a_blocking_wait_for_sync_code(tmp_path: Path) -> None:
    async def main() -> None:
        aw = await started(f"sqlite:///{tmp_path}/aw.db")
        try:
            handle = aw.defer(rt.build_report, "2024-06")
            report = await asyncio.to_thread(handle.result_sync, 20)
            assert report.month == "2024-06"
        finally:
            await aw.shutdown()

    asyncio.run(main())


def test_the_public_endpoint_shows_a_result_only_when_the_task_allows_it(durable_url: str) -> None:
    app = FastAPI()
    aw = Afterwork(app, url=durable_url, dashboard=True, dashboard_token="op-token")

    async def main() -> None:
        await aw.startup()
        try:
            public = aw.defer(rt.public_answer, "life")
            private = aw.defer(rt.private_answer, "life")
            failing = aw.defer(rt.always_fails)
            for handle in (public, private):
                await handle.result(timeout=20)
            with pytest.raises(TaskFailedError):
                await failing.result(timeout=20)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                api = "/afterwork/api/tasks"
                shown = (await client.get(f"{api}/{public.id}")).json()
                assert shown["result"] == {"question": "life", "answer": "42"}
                hidden = (await client.get(f"{api}/{private.id}")).json()
                assert "result" not in hidden and "s3cr3t-result" not in str(hidden)
                failed = (await client.get(f"{api}/{failing.id}")).json()
                assert "data source" not in str(failed) and "last_error" not in failed
                operator = {"Authorization": "Bearer op-token"}
                full = (await client.get(f"{api}/{private.id}", headers=operator)).json()
                assert full["result"] == {"question": "life", "secret": "s3cr3t-result"}
        finally:
            await aw.shutdown()

    asyncio.run(main())


def test_a_million_progress_reports_cost_a_few_writes(tmp_path: Path) -> None:
    written: list[int] = []
    announced: list[str] = []  # the events stream's PROGRESS events

    async def main() -> None:
        aw = await started(f"sqlite:///{tmp_path}/aw.db")
        real_apply = aw.store.apply

        def counting_apply(changes: Changes, timeout_seconds: float | None = None) -> None:
            written.append(len(changes.progress))
            real_apply(changes, timeout_seconds)

        aw.store.apply = counting_apply  # type: ignore[method-assign]  # the real store, counted
        from afterwork import EventKind

        aw.events.subscribe(lambda e: announced.append(e.progress or "")
                            if e.kind is EventKind.PROGRESS else None)
        try:
            began = time.monotonic()
            handle = aw.defer(rt.counts_a_lot, 1_000_000)
            assert await handle.result(timeout=120) == 1_000_000
            took = time.monotonic() - began
            record = aw.store.get(handle.id)
        finally:
            await aw.shutdown()
        assert record is not None and record.progress_json() is not None
        final = record.progress_json() or {}
        assert (final["done"], final["total"]) == (1_000_000, 1_000_000)  # the last report kept
        reports = sum(written)
        # one write when it starts, one per PROGRESS_EVERY_SECONDS, the last with the outcome
        assert 1 <= reports <= 3 + took / 0.5, (reports, took)
        assert 1 <= len(announced) <= reports  # each write but the last (with the outcome)
        assert '"total":1000000' in announced[0]

    asyncio.run(main())


def test_progress_survives_a_retry_as_attempt_n(tmp_path: Path) -> None:
    from afterwork._models import progress_text

    async def main() -> None:
        aw = await started(f"sqlite:///{tmp_path}/aw.db")
        try:
            handle = aw.defer(rt.fails_once_midway, 10)
            assert await handle.result(timeout=20) == "done"
            record = aw.store.get(handle.id)
        finally:
            await aw.shutdown()
        assert record is not None
        assert progress_text(record.progress_json()) == "attempt 2, 7 of 10: try 2"

    asyncio.run(main())


def test_progress_outside_a_task_does_nothing_and_refuses_nonsense() -> None:
    progress(1, total=2)
    with pytest.raises(ValueError, match="finite"):
        progress(float("nan"))


def test_purge_takes_the_results_with_the_task_and_keep_results_forgets_sooner(
        durable_url: str) -> None:
    async def main() -> None:
        aw = await started(durable_url)
        try:
            first = aw.defer(rt.build_report, "2024-01")
            await first.result(timeout=20)
            store: Store = aw.store
            assert store.forget_results(time.time() + 1) == 1
            record = store.get(first.id)
            assert record is not None and record.result is None
            second = aw.defer(rt.counts_a_lot, 3)
            await second.result(timeout=20)
            assert len(outputs_rows(aw)) == 2
            assert store.purge(time.time() + 1) == 2
            assert outputs_rows(aw) == []
        finally:
            await aw.shutdown()

    asyncio.run(main())


def test_progress_streams_as_sse_progress_events_and_shows_in_the_public_json(tmp_path: Path) -> None:
    import json

    from tests.dashboard.live import serve

    app = FastAPI()
    aw = Afterwork(app, url=f"sqlite:///{tmp_path}/aw.db")

    @app.post("/start")
    def start() -> dict[str, str]:
        return {"id": aw.defer(rt.in_steps, 4, 0.7).id}

    events: list[tuple[str, Any]] = []
    with serve(app) as base, httpx.Client(base_url=base, timeout=30) as client:
        task_id = client.post("/start").json()["id"]
        kind = ""
        with client.stream("GET", f"/afterwork/api/tasks/{task_id}/events") as stream:
            for line in stream.iter_lines():
                if line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: "):
                    events.append((kind, json.loads(line[6:])))
        final = client.get(f"/afterwork/api/tasks/{task_id}").json()
    done = [data["done"] for kind, data in events if kind == "progress"]
    assert len(done) >= 2 and done == sorted(done), events
    assert events[-1][0] == "state" and events[-1][1]["state"] == "succeeded"
    assert final["progress"]["done"] == 4 and final["progress"]["total"] == 4
    assert final["result"] == "4 steps"  # a public_result task


def test_keep_results_seconds_drops_old_results_from_the_runners_chores(tmp_path: Path) -> None:
    async def main() -> None:
        aw = await started(f"sqlite:///{tmp_path}/aw.db", keep_results_seconds=0.2,
                           poll_seconds=0.05)
        try:
            handle = aw.defer(rt.build_report, "2024-02")
            await handle.result(timeout=20)
            deadline = time.monotonic() + 20
            while (record := aw.store.get(handle.id)) is not None and record.result is not None:
                assert time.monotonic() < deadline, "the result was never dropped"
                await asyncio.sleep(0.1)
            assert record is not None and record.state.value == "succeeded"  # the task stays
        finally:
            await aw.shutdown()

    asyncio.run(main())


def test_afterwork_show_prints_progress_and_result(durable_url: str) -> None:
    from .test_cli import cli

    async def main() -> str:
        aw = await started(durable_url)
        try:
            handle = aw.defer(rt.fails_once_midway, 10)
            await handle.result(timeout=20)
            return handle.id
        finally:
            await aw.shutdown()

    task_id = asyncio.run(main())
    shown = cli("show", task_id, url=durable_url).stdout
    assert "progress: attempt 2, 7 of 10: try 2" in shown
    assert '"result": "done"' in shown


def test_the_dashboard_shows_a_bar_for_a_running_task_and_the_result_when_done(
        tmp_path: Path) -> None:
    from tests.dashboard.live import serve

    app = FastAPI()
    aw = Afterwork(app, url=f"sqlite:///{tmp_path}/aw.db", dashboard=True, dashboard_token="tok")

    @app.post("/start")
    def start() -> dict[str, str]:
        return {"id": aw.defer(rt.in_steps, 4, 0.7).id}

    operator = {"Authorization": "Bearer tok"}
    with serve(app) as base, httpx.Client(base_url=base, timeout=30, headers=operator) as client:
        task_id = client.post("/start").json()["id"]
        deadline = time.monotonic() + 20
        while "<progress value=" not in (listed := client.get("/afterwork/?state=running").text):
            assert time.monotonic() < deadline, listed
            time.sleep(0.1)
        assert " of 4: step " in listed  # the running list: a bar and its words
        page = client.get(f"/afterwork/tasks/{task_id}").text
        assert "<h2>Progress</h2>" in page and "<progress value=" in page
        while "id='result'" not in (page := client.get(f"/afterwork/tasks/{task_id}").text):
            assert time.monotonic() < deadline, page
            time.sleep(0.2)
        assert "4 steps" in page and "attempt 1, 4 of 4: step 4" in page
