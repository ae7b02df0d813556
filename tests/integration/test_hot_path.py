"""What the request's hot path relies on: time-ordered unguessable ids, runner outcomes folded
into the next group of writes (and still written soon when no group comes), and the start-up
heap frozen for the garbage collector once per process, at a server's first request (never
under a test client, nor when asked not to)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path

from afterwork._asgi import YOUNG_THRESHOLD
from afterwork._ids import new_id
from afterwork._models import Changes, Outcome, TaskRecord, TaskState
from afterwork._writer import FOLD_SECONDS, Writer
from afterwork.stores import Store, open_store


def test_ids_are_version_7_uuids_sorted_by_time_with_random_bits() -> None:
    first = [new_id() for _ in range(2000)]
    time.sleep(0.002)
    later = new_id()
    parsed = [uuid.UUID(i) for i in first]
    assert all(u.version == 7 and u.variant == uuid.RFC_4122 for u in parsed)
    assert len(set(first)) == len(first)
    assert all(later > i for i in first)  # a later millisecond sorts after
    millis = uuid.UUID(later).int >> 80
    assert abs(millis / 1000 - time.time()) < 5
    # The 74 bits after the time are random: within one millisecond, ids differ there.
    randoms = {u.int & ((1 << 80) - 1) for u in parsed}
    assert len(randoms) == len(parsed)
    low_bits = [u.int & 0xFFFF for u in parsed]
    assert len(set(low_bits)) > 1500  # not a counter


def test_a_forked_child_draws_ids_of_its_own() -> None:
    """A pre-forking server's workers must not repeat their parent's (and each other's) ids:
    the child of a process that made ids draws a new random block."""
    new_id()  # the parent holds a block
    code = textwrap.dedent("""
        import os, sys
        from afterwork._ids import new_id
        new_id()
        readers = []
        for _ in range(2):
            r, w = os.pipe()
            if os.fork() == 0:
                os.write(w, ",".join(new_id() for _ in range(50)).encode())
                os._exit(0)
            readers.append(r)
        mine = [new_id() for _ in range(50)]
        children = [os.read(r, 1 << 16).decode().split(",") for r in readers]
        tails = [i[14:] for i in mine + children[0] + children[1]]
        print(len(tails), len(set(tails)))
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          check=True)
    total, distinct = done.stdout.split()
    assert total == distinct == "150"


class _CountingStore:
    """A real SQLite store whose applies are counted (one apply is one transaction)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.applied: list[Changes] = []

    def apply(self, changes: Changes, timeout_seconds: float | None = None) -> None:
        self.applied.append(changes)
        self.store.apply(changes, timeout_seconds)

    def __getattr__(self, name: str) -> object:
        return getattr(self.store, name)


def _record(owner: str) -> TaskRecord:
    now = time.time()
    return TaskRecord(id=new_id(), name="m:f", payload='{"a":[],"k":{}}', state=TaskState.LEASED,
                      max_attempts=1, timeout_seconds=None, batch_id=None, seq=0, waiting_on=None,
                      lease_owner=owner, lease_until=None, run_at=now, created_at=now)


def _writer(tmp_path: Path) -> tuple[Writer, _CountingStore]:
    store = open_store(f"sqlite:///{tmp_path}/hot.db")
    store.lease_seconds, store.timeout_seconds = 30.0, 5.0
    store.open()
    counting = _CountingStore(store)
    writer = Writer(counting, tick_seconds=3600, on_tick=lambda: None)  # type: ignore[arg-type]
    writer.start()
    return writer, counting


def test_posted_outcomes_ride_with_the_next_write(tmp_path: Path) -> None:
    writer, store = _writer(tmp_path)
    try:
        first = _record("me")
        writer.submit(Changes(inserts=[first])).result(5)
        done = Outcome(first.id, "me", time.time())
        writer.post(Changes(started=[done], succeeded=[done]))
        second = _record("me")
        writer.submit(Changes(inserts=[second])).result(5)
        # One transaction for the second request's row and the first task's outcome.
        assert len(store.applied) == 2
        assert store.applied[1].inserts == [second] and store.applied[1].succeeded == [done]
        assert store.store.get(first.id).state is TaskState.SUCCEEDED  # type: ignore[union-attr]
    finally:
        writer.stop()
        store.store.close()


def test_the_writes_of_one_loop_turn_are_one_group(tmp_path: Path) -> None:
    """Requests handled in one turn of the event loop queue their rows; the writer is woken
    by a callback of the loop after them, so they share one transaction, even when the turn
    releases the GIL between them (where a writer woken at the first would take it alone)."""
    import asyncio

    writer, store = _writer(tmp_path)

    async def one_turn() -> None:
        futures = []
        for _ in range(5):
            futures.append(writer.submit_async(Changes(inserts=[_record("me")])))
            time.sleep(0.005)  # the GIL is free: a writer already woken would run now
        await asyncio.gather(*futures)

    try:
        asyncio.run(one_turn())
        assert [len(c.inserts) for c in store.applied] == [5]
    finally:
        writer.stop()
        store.store.close()


def test_posted_outcomes_are_written_soon_without_another_write(tmp_path: Path) -> None:
    writer, store = _writer(tmp_path)
    try:
        record = _record("me")
        writer.submit(Changes(inserts=[record])).result(5)
        time.sleep(1.0)  # past the writer's lingering: it sleeps until something comes
        done = Outcome(record.id, "me", time.time())
        posted = time.monotonic()
        writer.post(Changes(started=[done], succeeded=[done]))
        while store.store.get(record.id).state is not TaskState.SUCCEEDED:  # type: ignore[union-attr]
            assert time.monotonic() - posted < 2.0, "a posted outcome was not written"
            time.sleep(0.005)
        assert time.monotonic() - posted < FOLD_SECONDS + 0.5
    finally:
        writer.stop()
        store.store.close()


def test_stop_writes_posted_outcomes(tmp_path: Path) -> None:
    writer, store = _writer(tmp_path)
    record = _record("me")
    writer.submit(Changes(inserts=[record])).result(5)
    done = Outcome(record.id, "me", time.time())
    writer.post(Changes(started=[done], succeeded=[done]))
    stopper = threading.Thread(target=writer.stop)
    stopper.start()
    stopper.join(5)
    assert store.store.get(record.id).state is TaskState.SUCCEEDED  # type: ignore[union-attr]
    store.store.close()


_FREEZE_APP = textwrap.dedent("""
    import asyncio, gc, sys
    print(gc.get_freeze_count())  # the interpreter's own (Python 3.12 starts with some frozen)
    import httpx
    from fastapi import FastAPI
    from fastapi.testclient import TestClient
    from afterwork import Afterwork

    app = FastAPI()
    aw = Afterwork(app, url="memory://", freeze_gc=sys.argv[1] != "off")
    if sys.argv[1] == "own":  # the application's own collector policy
        gc.set_threshold(1234, 10, 10)

    @app.get("/")
    async def root() -> dict:
        return {}

    with TestClient(app) as client:  # a test client's requests never freeze
        client.get("/")
    print(gc.get_freeze_count())

    async def as_a_server(scope, receive, send):  # the ASGI spec version, as uvicorn says it
        await app({**scope, "asgi": {"version": "3.0", "spec_version": "2.3"}}, receive, send)

    async def served() -> None:
        for target in (app, as_a_server):  # httpx's transport alone: a test, no freeze
            transport = httpx.ASGITransport(app=target)
            async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
                await client.get("/")
                print(gc.get_freeze_count())
        await aw.shutdown()
        print(gc.get_threshold()[0])

    asyncio.run(served())
""")


def test_the_start_up_heap_is_frozen_and_young_collections_spaced_at_a_servers_first_request() -> None:
    def counts(setting: str) -> tuple[int, int, int, int]:
        """Objects frozen beyond the interpreter's own: under TestClient, httpx, a server; and
        the young generation's threshold at the end."""
        done = subprocess.run([sys.executable, "-c", _FREEZE_APP, setting], capture_output=True,
                              text=True, timeout=60, check=True)
        own, under_test_client, under_httpx, served, young = map(int, done.stdout.split())
        return under_test_client - own, under_httpx - own, served - own, young

    under_test_client, under_httpx, served, young = counts("on")
    assert under_test_client == 0 and under_httpx == 0 and served > 10_000
    assert young == YOUNG_THRESHOLD  # raised from the interpreter's default once frozen
    assert counts("off") in ((0, 0, 0, 700), (0, 0, 0, 2000))  # the interpreter's, untouched
    *_, served, young = counts("own")
    assert served > 10_000 and young == 1234  # frozen; the application's own threshold kept


def test_stop_ends_an_idle_writer_at_once(tmp_path: Path) -> None:
    writer, store = _writer(tmp_path)
    writer.submit(Changes(inserts=[_record("me")])).result(5)
    time.sleep(0.8)  # idle: past the lingering, asleep until its (hour-long) tick
    began = time.monotonic()
    writer.stop()
    assert time.monotonic() - began < 1.0
    store.store.close()
