"""One line of set-up: FastAPI's and Starlette's own classes, wherever they are made, are
durable under `Afterwork(app)`; unstorable tasks never fail a request; in-memory tasks run
where Starlette runs them; a TestClient's request returns after its tasks, as before."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import fastapi
import pytest
import starlette.background
from fastapi import Depends, FastAPI
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from fastapi.testclient import TestClient
from pydantic import SecretStr

from afterwork import Afterwork, AfterworkWarning, ConfigurationError
from afterwork.testing import wait_for_tasks

from . import fastapi_tasks as ft
from .test_guarantees import db_rows


@pytest.fixture(autouse=True)
def _clean() -> Iterator[None]:
    ft.SEEN.clear()
    yield
    ft.SEEN.clear()


def names_and_states(url: str) -> list[tuple[str, str]]:
    return [(name.rsplit(":", 1)[1], state) for name, state, _ in db_rows(url)]


def question_app(url: str, **options: object) -> FastAPI:
    """Every way FastAPI's docs and answers add a task, with FastAPI's and Starlette's own
    classes only, and `Afterwork(app)` added."""
    app = FastAPI()
    Afterwork(app, url=url, **options)  # type: ignore[arg-type]

    @app.get("/param")
    def param(tasks: fastapi.BackgroundTasks) -> dict[str, str]:
        tasks.add_task(ft.note, "param")
        return {}

    def helper_tasks(label: str) -> fastapi.BackgroundTasks:
        tasks = fastapi.BackgroundTasks()  # made in a helper, nothing passed down
        tasks.add_task(ft.note, label)
        return tasks

    @app.get("/json")
    def json_response() -> JSONResponse:
        return JSONResponse({}, background=helper_tasks("json"))

    @app.get("/attr")
    def attribute() -> JSONResponse:
        response = JSONResponse({})
        response.background = helper_tasks("attr")
        return response

    @app.get("/single")
    def single() -> JSONResponse:
        return JSONResponse({}, background=starlette.background.BackgroundTask(ft.note, "single"))

    @app.get("/starlette")
    def starlette_tasks() -> JSONResponse:
        tasks = starlette.background.BackgroundTasks()
        tasks.add_task(ft.note_async, "starlette")
        return JSONResponse({}, background=tasks)

    @app.get("/stream")
    def stream() -> StreamingResponse:
        return StreamingResponse(iter([b"a", b"b"]), background=helper_tasks("stream"))

    @app.get("/file")
    def file() -> FileResponse:
        return FileResponse(__file__, background=helper_tasks("file"))

    @app.get("/forgotten")
    def forgotten() -> dict[str, str]:
        helper_tasks("forgotten")  # never attached: Starlette would drop it silently
        return {}

    return app


WAYS = ["param", "json", "attr", "single", "starlette", "stream", "file", "forgotten"]


@pytest.mark.parametrize("way", WAYS)
def test_fastapi_and_starlette_classes_are_stored_and_run_wherever_made(durable_url: str, way: str) -> None:
    app = question_app(durable_url)
    with TestClient(app) as client:
        assert client.get(f"/{way}").status_code == 200
        assert [label for label, _ in ft.SEEN] == [way]  # ran before the request returned
    name = "note_async" if way == "starlette" else "note"
    assert names_and_states(durable_url) == [(name, "succeeded")]


def test_isinstance_and_public_attributes_of_the_classes_stay_as_they_are(sqlite_url: str) -> None:
    app = FastAPI()
    Afterwork(app, url=sqlite_url)
    seen = {}

    @app.get("/")
    def endpoint() -> JSONResponse:
        tasks = fastapi.BackgroundTasks()
        tasks.add_task(ft.note, "x", value=1)
        task = tasks.tasks[0]
        seen.update(cls=type(tasks), task=type(task), func=task.func, args=task.args,
                    kwargs=task.kwargs, is_async=task.is_async, count=len(tasks.tasks))
        return JSONResponse({}, background=tasks)

    with TestClient(app) as client:
        client.get("/")
    assert seen == {"cls": fastapi.BackgroundTasks, "task": starlette.background.BackgroundTask,
                    "func": ft.note, "args": ("x",), "kwargs": {"value": 1}, "is_async": False,
                    "count": 1}


def test_tasks_of_a_failing_request_are_not_stored(sqlite_url: str) -> None:
    app = FastAPI()
    Afterwork(app, url=sqlite_url)

    @app.get("/")
    def endpoint() -> None:
        fastapi.BackgroundTasks().add_task(ft.note, "never")
        raise fastapi.HTTPException(409)

    with TestClient(app) as client:
        assert client.get("/").status_code == 409
    assert ft.SEEN == [] and db_rows(sqlite_url) == []


# -- whatever the argument, never a failed request ----------------------------------------------

def test_argument_without_a_pydantic_schema_runs_in_memory_with_advice_that_works(sqlite_url: str) -> None:
    app = FastAPI()
    Afterwork(app, url=sqlite_url)
    db = ft.Session()

    @app.get("/")
    def endpoint(tasks: fastapi.BackgroundTasks) -> dict[str, str]:
        tasks.add_task(ft.record_in, db, "hello")
        return {}

    advice = r"record_in.*'db'.*Session has no JSON form.*an id"
    with TestClient(app) as client, pytest.warns(AfterworkWarning, match=advice):
        assert client.get("/").status_code == 200
    assert db.added == ["hello"] and db_rows(sqlite_url) == []


def test_unannotated_argument_advice_to_annotate_makes_it_storable(sqlite_url: str) -> None:
    app = FastAPI()
    Afterwork(app, url=sqlite_url)

    @app.get("/{how}")
    def endpoint(how: str, tasks: fastapi.BackgroundTasks) -> dict[str, str]:
        func = ft.unannotated if how == "unannotated" else ft.annotated
        tasks.add_task(func, ft.Point(x=1, y=2))
        return {}

    with TestClient(app) as client:
        with pytest.warns(AfterworkWarning, match="annotate the parameter with a type pydantic"):
            client.get("/unannotated")
        client.get("/annotated")  # the advice followed: stored, and no warning
    point = ft.Point(x=1, y=2)
    seen = list(ft.SEEN)
    assert seen == [("unannotated", point), ("annotated", point)]
    assert names_and_states(sqlite_url) == [("annotated", "succeeded")]


def nested(depth: int) -> list[object]:
    value: list[object] = []
    for _ in range(depth):
        value = [value]
    return value


def self_referencing() -> list[object]:
    value: list[object] = []
    value.append(value)
    return value


@pytest.mark.parametrize("kind", ["nested-253", "nested-5000", "self-referencing", "secret",
                                  "secret-in-model", "secret-unannotated"])
def test_hostile_arguments_run_in_memory_never_a_500(sqlite_url: str, kind: str) -> None:
    app = FastAPI()
    Afterwork(app, url=sqlite_url)
    func, arg = {
        "nested-253": (ft.unannotated, nested(253)),
        "nested-5000": (ft.unannotated, nested(5000)),
        "self-referencing": (ft.unannotated, self_referencing()),
        "secret": (ft.with_secret, SecretStr("s3cret")),
        "secret-in-model": (ft.with_login, ft.Login(user="u", password=SecretStr("s3cret"))),
        "secret-unannotated": (ft.unannotated, SecretStr("s3cret")),
    }[kind]

    @app.get("/")
    def endpoint(tasks: fastapi.BackgroundTasks) -> dict[str, str]:
        tasks.add_task(func, arg)
        return {}

    with TestClient(app) as client, pytest.warns(AfterworkWarning, match="cannot be stored"):
        assert client.get("/").status_code == 200
    assert len(ft.SEEN) == 1  # it ran, in memory
    if kind.startswith("secret") and kind != "secret-unannotated":
        assert ft.SEEN[0][1] == "s3cret"  # the real value, never '**********'
    assert db_rows(sqlite_url) == []  # and no secret, nor anything half-written, in the store


def test_hostile_arguments_are_refused_with_their_reason_when_strict(sqlite_url: str) -> None:
    app = FastAPI()
    Afterwork(app, url=sqlite_url, strict=True)

    @app.get("/")
    def endpoint(tasks: fastapi.BackgroundTasks) -> dict[str, str]:
        tasks.add_task(ft.with_secret, SecretStr("s3cret"))
        return {}

    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.get("/").status_code == 500
    assert ft.SEEN == [] and db_rows(sqlite_url) == []


def test_a_datetime_keeps_its_zone(durable_url: str) -> None:
    app = FastAPI()
    Afterwork(app, url=durable_url)
    paris = dt.datetime(2026, 3, 29, 1, 30, tzinfo=ZoneInfo("Europe/Paris"))

    @app.get("/")
    def endpoint(tasks: fastapi.BackgroundTasks) -> dict[str, str]:
        tasks.add_task(ft.at_time, paris, plain=paris)
        return {}

    with TestClient(app) as client:
        client.get("/")
    [(_, (when, plain))] = ft.SEEN
    assert when == plain == paris
    assert when.tzinfo == plain.tzinfo == ZoneInfo("Europe/Paris")
    assert names_and_states(durable_url) == [("at_time", "succeeded")]


def test_a_stored_task_sees_its_arguments_as_they_were_when_added(sqlite_url: str) -> None:
    app = FastAPI()
    Afterwork(app, url=sqlite_url)

    @app.get("/")
    def endpoint(tasks: fastapi.BackgroundTasks) -> dict[str, str]:
        values = [1]
        tasks.add_task(ft.items, values)  # stored: the arguments as they are now
        tasks.add_task(lambda: ft.note("lambda", list(values)))  # in memory: Starlette's view
        values.append(2)
        return {}

    with TestClient(app) as client, pytest.warns(AfterworkWarning, match="lambda"):
        client.get("/")
    assert ft.SEEN == [("items", [1]), ("lambda", [1, 2])]


# -- in-memory tasks run where Starlette runs them ----------------------------------------------

@pytest.mark.parametrize("inline", [True, False], ids=["test-client", "detached"])
def test_in_memory_tasks_run_inside_the_response_call_with_yield_dependencies_open(
    sqlite_url: str, inline: bool
) -> None:
    app = FastAPI()
    Afterwork(app, url=sqlite_url, inline_in_tests=inline)
    state = {"open": False}

    async def resource() -> AsyncIterator[dict[str, bool]]:
        state["open"] = True
        yield state
        state["open"] = False

    @app.get("/")
    def endpoint(tasks: fastapi.BackgroundTasks,
                 res: dict[str, bool] = Depends(resource)) -> dict[str, str]:  # noqa: B008
        tasks.add_task(lambda: ft.note("first", res["open"]))
        tasks.add_task(lambda: ft.note("second", res["open"]))
        return {}

    with TestClient(app) as client, pytest.warns(AfterworkWarning):
        client.get("/")
    # FastAPI 0.106-0.117 closed `yield` dependencies before the response (so before any
    # task, its own included); from 0.118 they stay open while the tasks run, as here.
    still_open = tuple(int(x) for x in fastapi.__version__.split(".")[:2]) >= (0, 118)
    seen = list(ft.SEEN)
    assert seen == [("first", still_open), ("second", still_open)]
    assert state["open"] is False


def test_in_memory_failure_stops_the_in_memory_tasks_after_it(sqlite_url: str) -> None:
    app = FastAPI()
    Afterwork(app, url=sqlite_url)

    def boom() -> None:
        ft.note("boom")
        raise RuntimeError("in memory, on purpose")

    @app.get("/")
    def endpoint(tasks: fastapi.BackgroundTasks) -> dict[str, str]:
        tasks.add_task(lambda: ft.note("before"))
        tasks.add_task(boom)
        tasks.add_task(lambda: ft.note("after"))
        return {}

    with TestClient(app) as client, pytest.warns(AfterworkWarning):
        assert client.get("/").status_code == 200
    assert [label for label, _ in ft.SEEN] == ["before", "boom"]


def test_mixed_stored_and_in_memory_tasks_run_in_order_under_a_test_client(sqlite_url: str) -> None:
    app = FastAPI()
    Afterwork(app, url=sqlite_url)

    @app.get("/")
    def endpoint(tasks: fastapi.BackgroundTasks) -> dict[str, str]:
        tasks.add_task(ft.note, "stored-1")
        tasks.add_task(lambda: ft.note("memory-2"))
        tasks.add_task(ft.note_async, "stored-3")
        return {}

    with TestClient(app) as client, pytest.warns(AfterworkWarning):
        client.get("/")
    assert [label for label, _ in ft.SEEN] == ["stored-1", "memory-2", "stored-3"]
    assert names_and_states(sqlite_url) == [("note", "succeeded"), ("note_async", "succeeded")]


def test_a_failing_stored_task_cancels_the_rest_of_its_response_inline(sqlite_url: str) -> None:
    app = FastAPI()
    Afterwork(app, url=sqlite_url, max_attempts=1)

    @app.get("/")
    def endpoint(tasks: fastapi.BackgroundTasks) -> dict[str, str]:
        tasks.add_task(ft.fails)
        tasks.add_task(ft.note, "after")
        return {}

    with TestClient(app) as client:
        assert client.get("/").status_code == 200
    assert ft.SEEN == [("fails", None)]
    assert names_and_states(sqlite_url) == [("fails", "failed"), ("note", "cancelled")]


# -- users' existing tests keep passing ---------------------------------------------------------

def tutorial_app(url: str, log: Path) -> FastAPI:
    """FastAPI's background-task tutorial, with `Afterwork(app)` added."""
    app = FastAPI()
    Afterwork(app, url=url)

    @app.post("/send-notification/{email}")
    async def send_notification(email: str, background_tasks: fastapi.BackgroundTasks) -> dict[str, str]:
        background_tasks.add_task(write_log, str(log), f"notification for {email}")
        return {"message": "Notification sent in the background"}

    return app


def write_log(path: str, message: str) -> None:
    with open(path, "a") as f:
        f.write(message + "\n")


@pytest.mark.parametrize("with_block", [True, False], ids=["with", "without-with"])
def test_a_test_that_checks_the_effect_right_after_the_request_passes_every_time(
    durable_url: str, tmp_path: Path, with_block: bool
) -> None:
    log = tmp_path / "log.txt"
    app = tutorial_app(durable_url, log)
    client = TestClient(app)
    if with_block:
        client.__enter__()
    try:
        for n in range(20):
            response = client.post(f"/send-notification/u{n}@example.com")
            assert response.status_code == 200
            assert log.read_text().splitlines()[-1] == f"notification for u{n}@example.com"
    finally:
        if with_block:
            client.__exit__(None, None, None)
    assert names_and_states(durable_url) == [("write_log", "succeeded")] * 20


def test_detached_in_tests_when_asked_and_wait_for_tasks_waits(sqlite_url: str, tmp_path: Path) -> None:
    log = tmp_path / "log.txt"
    app = FastAPI()
    Afterwork(app, url=sqlite_url, inline_in_tests=False)

    @app.get("/")
    def endpoint(tasks: fastapi.BackgroundTasks) -> dict[str, str]:
        tasks.add_task(write_log, str(log), "detached")
        return {}

    with TestClient(app) as client:
        client.get("/")
        wait_for_tasks(app)
    assert log.read_text() == "detached\n"


# -- trio: refused at start-up, with a message that says so -------------------------------------

def test_an_app_served_on_trio_is_refused_at_start_up_with_a_clear_message(sqlite_url: str) -> None:
    app = question_app(sqlite_url)
    with pytest.raises(ConfigurationError, match=r"runs on asyncio.*trio"), TestClient(app, backend="trio"):
        pass


def test_an_app_on_trio_without_lifespan_refuses_each_request_with_the_same_message(sqlite_url: str) -> None:
    app = question_app(sqlite_url)
    client = TestClient(app, backend="trio")
    with pytest.raises(ConfigurationError, match=r"runs on asyncio.*trio"):
        client.get("/param")
    assert ft.SEEN == []


def test_the_same_app_on_asyncio_works(sqlite_url: str) -> None:
    app = question_app(sqlite_url)
    with TestClient(app, backend="asyncio") as client:
        client.get("/param")
    assert ft.SEEN == [("param", None)]


MADE_AT_IMPORT = starlette.background.BackgroundTask(ft.note, "made-at-import")


def test_a_task_made_outside_the_request_runs_in_memory_and_warns_at_that_moment(sqlite_url: str) -> None:
    app = FastAPI()
    Afterwork(app, url=sqlite_url)

    @app.get("/")
    def endpoint() -> JSONResponse:
        return JSONResponse({}, background=MADE_AT_IMPORT)

    with TestClient(app) as client, pytest.warns(AfterworkWarning, match="made outside the request"):
        client.get("/")
    assert ft.SEEN == [("made-at-import", None)]
    assert db_rows(sqlite_url) == []
