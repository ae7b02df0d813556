"""The compatibility checklist of docs/compat.md, item by item, for the behaviours afterwork keeps
(its item numbers are in the test names)."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable

import fastapi
import pytest
import starlette.background
from fastapi import Depends, FastAPI, HTTPException, WebSocket
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.testclient import TestClient

from afterwork import BackgroundTask, BackgroundTasks
from afterwork.testing import wait_for_tasks

from .tasks_for_tests import EVENTS, labels, record, record_sync, slow_record

Serve = Callable[..., TestClient]


def test_01_02_03_one_instance_per_request_shared_by_dependencies(serve: Serve) -> None:
    seen: list[int] = []
    app = FastAPI()

    def sub(tasks: BackgroundTasks) -> None:
        seen.append(id(tasks))
        tasks.add_task(record, "sub")

    def dep(tasks: BackgroundTasks, _: None = Depends(sub)) -> None:
        seen.append(id(tasks))
        tasks.add_task(record, "dep")

    @app.get("/")
    def endpoint(tasks: BackgroundTasks, _: None = Depends(dep)) -> dict[str, int]:
        seen.append(id(tasks))
        assert len(tasks.tasks) == 2  # new and empty per request, then the two above
        tasks.add_task(record, "endpoint")
        return {}

    client = serve(app)
    client.get("/")
    client.get("/")
    wait_for_tasks(app)
    assert len(set(seen[:3])) == 1 and len(set(seen[3:])) == 1
    # 16: dependency tasks run before the endpoint's, in call order; 10: in add order
    assert labels() == ["sub", "dep", "endpoint"] * 2


def test_01_fastapi_own_class_is_durable_once_installed(serve: Serve) -> None:
    app = FastAPI()

    @app.get("/")
    def endpoint(tasks: fastapi.BackgroundTasks) -> dict[str, str]:
        assert isinstance(tasks, BackgroundTasks)
        return {"id": tasks.add_task(record, "plain").id}  # type: ignore[func-returns-value]

    client = serve(app)
    task_id = client.get("/").json()["id"]
    wait_for_tasks(app)
    assert client.get(f"/afterwork/api/tasks/{task_id}").json()["state"] == "succeeded"


def test_04_05_add_task_records_func_args_kwargs_in_a_list() -> None:
    tasks = BackgroundTasks()
    handle = tasks.add_task(record, "a", value=1)
    assert handle.stored is False  # outside a request: Starlette's in-memory behaviour
    assert len(tasks.tasks) == 1
    t = tasks.tasks[0]
    assert (t.func, t.args, t.kwargs, t.is_async) == (record, ("a",), {"value": 1}, True)
    tasks.tasks.clear()
    assert tasks.tasks == []


async def _run(tasks: starlette.background.BackgroundTask) -> None:
    await tasks()


def test_06_07_constructed_without_request_and_awaited_in_order() -> None:
    import anyio

    tasks = BackgroundTasks(tasks=[BackgroundTask(slow_record, "first", 0.05)])
    tasks.add_task(record_sync, "second")
    anyio.run(_run, tasks)
    assert labels() == ["first", "second"]


def test_08_is_an_instance_of_starlette_and_fastapi_classes() -> None:
    assert isinstance(BackgroundTasks(), starlette.background.BackgroundTasks)
    assert isinstance(BackgroundTasks(), fastapi.BackgroundTasks)
    assert isinstance(BackgroundTask(record, "x"), starlette.background.BackgroundTask)


def test_04_05_08_in_a_request_add_task_makes_starlettes_task_whichever_class(serve: Serve) -> None:
    """During a request, each class's add_task appends what Starlette's would (a
    `starlette.background.BackgroundTask` with func, args, kwargs and is_async), bound to the
    request: stored and run once. afterwork makes that object without Starlette's constructor
    (checked against Starlette's code at start-up); on the versions this project supports,
    that direct path is the one taken."""
    from afterwork import _compat

    app = FastAPI()
    made: list[starlette.background.BackgroundTask] = []

    @app.get("/")
    def endpoint(ours: BackgroundTasks) -> dict[str, list[str]]:
        plain = starlette.background.BackgroundTasks()
        plain.add_task(record_sync, "starlette", value=3)
        ours.add_task(record, "ours")
        fastapi.BackgroundTasks.add_task(ours, record_sync, "fastapi")  # FastAPI's own method
        made.extend([*plain.tasks, *ours.tasks])
        return {"ids": [_compat.handle_of(t).id for t in made]}

    client = serve(app)
    ids = client.get("/").json()["ids"]
    wait_for_tasks(app)
    assert _compat._direct
    assert [type(t) for t in made] == [starlette.background.BackgroundTask] * 3
    assert [(t.func, t.args, t.kwargs, t.is_async) for t in made] == [
        (record_sync, ("starlette",), {"value": 3}, False),
        (record, ("ours",), {}, True),
        (record_sync, ("fastapi",), {}, False),
    ]
    assert sorted(labels()) == ["fastapi", "ours", "starlette"]
    assert [client.get(f"/afterwork/api/tasks/{i}").json()["state"] for i in ids] == ["succeeded"] * 3


def test_08_a_starlette_whose_constructor_changed_gets_the_constructor_path(
        serve: Serve, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where Starlette's BackgroundTask no longer matches what add_bound stands in for, tasks
    are made by Starlette's own constructor, and bound all the same."""
    from afterwork import _compat

    app = FastAPI()

    @app.get("/")
    def endpoint(tasks: BackgroundTasks) -> dict[str, str]:
        handle = tasks.add_task(record_sync, "constructed")
        assert tasks.tasks[-1].__dict__["is_async"] is False  # set by Starlette's __init__
        return {"id": handle.id}

    client = serve(app)
    monkeypatch.setattr(_compat, "_direct", False)
    task_id = client.get("/").json()["id"]
    wait_for_tasks(app)
    assert labels() == ["constructed"]
    assert client.get(f"/afterwork/api/tasks/{task_id}").json()["state"] == "succeeded"


def test_12_13_async_on_the_loop_thread_sync_on_another(serve: Serve) -> None:
    app = FastAPI()
    loop_thread: list[int] = []

    @app.get("/")
    async def endpoint(tasks: BackgroundTasks) -> dict[str, str]:
        loop_thread.append(threading.get_ident())
        tasks.add_task(record, "async")
        tasks.add_task(record_sync, "sync")
        return {}

    client = serve(app)
    client.get("/")
    wait_for_tasks(app)
    threads = {e[0]: e[2] for e in EVENTS}
    assert threads["async"] == loop_thread[0]
    assert threads["sync"] != loop_thread[0]


def test_17_tasks_added_only_in_a_dependency_run(serve: Serve) -> None:
    app = FastAPI()

    def dep(tasks: BackgroundTasks) -> None:
        tasks.add_task(record, "from-dep")

    @app.get("/", dependencies=[Depends(dep)])
    def endpoint() -> dict[str, str]:
        return {}

    client = serve(app)
    client.get("/")
    wait_for_tasks(app)
    assert labels() == ["from-dep"]


def test_18_19_20_plain_data_response_and_response_with_own_background_all_run(serve: Serve) -> None:
    app = FastAPI()

    @app.get("/data")
    def data(tasks: BackgroundTasks) -> dict[str, str]:
        tasks.add_task(record, "data")
        return {}

    @app.get("/response")
    def response(tasks: BackgroundTasks) -> JSONResponse:
        tasks.add_task(record, "injected-418")
        return JSONResponse({}, status_code=418)

    @app.get("/own")
    def own(tasks: BackgroundTasks) -> JSONResponse:
        tasks.add_task(record, "injected")
        return JSONResponse({}, background=BackgroundTask(record, "own"))

    client = serve(app)
    assert client.get("/data").status_code == 200
    assert client.get("/response").status_code == 418
    client.get("/own")
    wait_for_tasks(app)
    # 20, deliberately changed: FastAPI drops "injected" here; afterwork runs both.
    assert labels() == ["data", "injected-418", "injected", "own"]


def test_21_raising_endpoint_dependency_or_validation_schedules_nothing(serve: Serve) -> None:
    app = FastAPI()

    def bad_dep(tasks: BackgroundTasks) -> None:
        tasks.add_task(record, "dep-before-raise")
        raise HTTPException(401, "no")

    @app.get("/http")
    def http(tasks: BackgroundTasks) -> None:
        tasks.add_task(record, "http")
        raise HTTPException(409, "conflict")

    @app.get("/dep", dependencies=[Depends(bad_dep)])
    def dep() -> None:
        pass

    @app.get("/validation")
    def validation(n: int, tasks: BackgroundTasks) -> None:
        tasks.add_task(record, "validation")

    @app.get("/crash")
    def crash(tasks: BackgroundTasks) -> None:
        tasks.add_task(record, "crash")
        raise RuntimeError("boom")

    client = serve(app)
    assert client.get("/http").status_code == 409
    assert client.get("/dep").status_code == 401
    assert client.get("/validation?n=x").status_code == 422
    with pytest.raises(RuntimeError):
        client.get("/crash")
    wait_for_tasks(app)
    assert EVENTS == []
    assert app.state.afterwork.store.query() == []


def test_21_exception_handler_can_still_schedule_its_own_tasks(serve: Serve) -> None:
    app = FastAPI()

    class Oops(Exception):
        pass

    @app.exception_handler(Oops)
    async def on_oops(request: fastapi.Request, exc: Oops) -> JSONResponse:
        BackgroundTasks().add_task(record, "alert")
        return JSONResponse({"detail": "oops"}, status_code=500)

    @app.get("/")
    def endpoint(tasks: BackgroundTasks) -> None:
        tasks.add_task(record, "dropped")
        raise Oops()

    client = serve(app)
    assert client.get("/").status_code == 500
    wait_for_tasks(app)
    assert labels() == ["alert"]


def test_22_websocket_injected_tasks_never_run(serve: Serve) -> None:
    app = FastAPI()

    @app.websocket("/ws")
    async def ws(websocket: WebSocket, tasks: BackgroundTasks) -> None:
        await websocket.accept()
        tasks.add_task(record, "ws")
        await websocket.send_text("hi")
        await websocket.close()

    client = serve(app)
    with client.websocket_connect("/ws") as conn:
        assert conn.receive_text() == "hi"
    wait_for_tasks(app)
    assert EVENTS == []


def test_23_streaming_response_tasks_run_after_the_last_chunk(serve: Serve) -> None:
    import asyncio

    app = FastAPI()

    async def chunks() -> AsyncIterator[bytes]:
        for n in range(3):
            await asyncio.sleep(0.05)
            EVENTS.append((f"chunk-{n}", None, 0))
            yield b"x"

    @app.get("/stream")
    def stream(tasks: BackgroundTasks) -> StreamingResponse:
        tasks.add_task(record, "task")
        return StreamingResponse(chunks())

    client = serve(app)
    assert client.get("/stream").content == b"xxx"
    wait_for_tasks(app)
    assert labels() == ["chunk-0", "chunk-1", "chunk-2", "task"]


def test_without_afterwork_installed_classes_behave_as_starlette() -> None:
    app = FastAPI()

    @app.get("/")
    def endpoint(tasks: BackgroundTasks) -> dict[str, bool]:
        return {"stored": tasks.add_task(record, "inline").stored}

    with TestClient(app) as client:
        assert client.get("/").json() == {"stored": False}
    # Starlette ran it inside the request, before the client call returned.
    assert labels() == ["inline"]


CHANGED_FASTAPI = """
import fastapi, fastapi.dependencies.utils
class Moved(fastapi.BackgroundTasks):  # a FastAPI that injects some other class
    pass
fastapi.dependencies.utils.BackgroundTasks = Moved
from afterwork import Afterwork, ConfigurationError
try:
    Afterwork(fastapi.FastAPI(), url="memory://")
except ConfigurationError as exc:
    print(exc)
    raise SystemExit(3)
raise SystemExit(0)
"""


def test_a_fastapi_whose_internals_moved_is_refused_at_set_up_naming_the_versions() -> None:
    # In its own interpreter: the patch is once per process, and this one is already patched.
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", CHANGED_FASTAPI], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 3, done.stdout + done.stderr
    assert f"FastAPI {fastapi.__version__}" in done.stdout
    assert "fastapi.dependencies.utils.BackgroundTasks" in done.stdout
