"""pytest plugin: run Starlette's and FastAPI's own tests with `Afterwork(app)` on every app.

Loaded into an upstream test run by `scripts/upstream-tests` (`-p afterwork_upstream_plugin`,
this folder on PYTHONPATH); it is no part of afterwork's own suite.

`--afterwork=on` (the default):
- every `Starlette(...)` and `FastAPI(...)` gets `Afterwork(app, url="sqlite:///<tmp>/aw-N.db")`
  as the last step of its constructor, so apps built at import time (FastAPI's `docs_src`
  tutorials) are covered as well as apps built inside a test;
- a `TestClient` given a bare ASGI callable (Starlette's own background tests write their apps
  as `async def app(scope, receive, send)`) gets it mounted in a `Starlette` app, since
  `Afterwork(app)` needs one; the callable itself runs unchanged;
- afterwork's warning for a task that cannot be stored (a closure, say) is shown, not raised:
  upstream configs turn every warning into an error, and that warning is afterwork's
  deliberate notice, not a failure of the behaviour under test.
`--afterwork=off` changes nothing: the baseline.

`--afterwork-report=FILE` writes every test's outcome (and its failure's one-line message) as
JSON for the driver to compare with the expected differences.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import itertools
import json
import shutil
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

_FRAMEWORK_PREFIXES = ("starlette.", "fastapi.", "afterwork.", "afterwork_upstream_plugin")


class _State:
    def __init__(self, mode: str, report: str | None) -> None:
        self.mode = mode
        self.report = Path(report) if report else None
        self.outcomes: dict[str, dict[str, str]] = {}
        self.warnings: dict[str, list[str]] = {}
        self.installed: list[Any] = []  # Afterwork instances, closed at the end
        self.wrapped_raw_apps = 0
        self.clients = 0  # TestClients made
        self.uncovered: list[str] = []  # tests whose TestClient's app had no Afterwork
        self.current = "<collection>"  # the test running now
        self.tmp: Path | None = None
        self.counter = itertools.count(1)
        self.undo: list[Callable[[], None]] = []
        self.constructing = threading.local()


_STATE: _State | None = None


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("afterwork-upstream")
    group.addoption("--afterwork", choices=("on", "off"), default="on",
                    help="on: install Afterwork(app) on every app the tests build; off: baseline")
    group.addoption("--afterwork-report", default=None, help="write per-test outcomes as JSON here")


def pytest_configure(config: pytest.Config) -> None:
    global _STATE
    _STATE = _State(config.getoption("--afterwork"), config.getoption("--afterwork-report"))
    if not config.pluginmanager.hasplugin("xdist"):
        # FastAPI's tests mark file-writing tests for pytest-xdist; they run serially here.
        config.addinivalue_line("markers", "xdist_group(name): pytest-xdist's grouping, unused")
    if _STATE.mode == "on":
        # Shown in the summary (and recorded per test below), never turned into an error.
        config.addinivalue_line("filterwarnings", "always::afterwork.AfterworkWarning")
        _install_hooks(_STATE)


def pytest_unconfigure(config: pytest.Config) -> None:
    state = _STATE
    if state is None:
        return
    for undo in reversed(state.undo):
        undo()
    for aw in state.installed:
        _close(aw)
    if state.tmp is not None:
        shutil.rmtree(state.tmp, ignore_errors=True)


# -- installing Afterwork --------------------------------------------------------------------
def _app_module() -> str:
    """The module that constructed the app: its functions may run after a restart, as they
    would for `Afterwork(app)` written in that module."""
    frame = sys._getframe(2)
    while frame is not None:
        name = str(frame.f_globals.get("__name__", ""))
        if name and not name.startswith(_FRAMEWORK_PREFIXES) and name != __name__:
            return name
        frame = frame.f_back  # type: ignore[assignment]
    return "__main__"


def _install(state: _State, app: Any, module: str) -> None:
    from afterwork import Afterwork

    if state.tmp is None:
        state.tmp = Path(tempfile.mkdtemp(prefix="afterwork-upstream-"))
    url = f"sqlite:///{state.tmp}/aw-{next(state.counter)}.db"
    state.installed.append(Afterwork(app, url=url, packages=[module]))


def _wrap_init(state: _State, cls: type) -> None:
    original = cls.__dict__["__init__"]

    @functools.wraps(original)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        # Only the outermost constructor installs (a subclass's __init__ calling super()).
        busy: set[int] = state.constructing.__dict__.setdefault("ids", set())
        outermost = id(self) not in busy
        busy.add(id(self))
        try:
            original(self, *args, **kwargs)
        finally:
            if outermost:
                busy.discard(id(self))
        if outermost and getattr(self.state, "afterwork", None) is None:
            _install(state, self, _app_module())

    cls.__init__ = __init__  # type: ignore[misc]
    state.undo.append(lambda: setattr(cls, "__init__", original))


def _is_asgi3(app: Any) -> bool:
    """As TestClient decides (it adapts an ASGI2 `app(scope)` itself; a mount does not)."""
    from starlette._utils import is_async_callable

    if inspect.isclass(app):
        return hasattr(app, "__await__")
    return is_async_callable(app)


def _app_inside(app: Any, starlette: type) -> Any:
    """The Starlette app itself, or inside middleware objects (their `.app` chain)."""
    for _ in range(20):
        if isinstance(app, starlette):
            return app
        app = getattr(app, "app", None)
        if app is None:
            return None
    return None


def _wrap_test_client(state: _State) -> None:
    from starlette.applications import Starlette
    from starlette.routing import Mount
    from starlette.testclient import TestClient

    original = TestClient.__dict__["__init__"]

    @functools.wraps(original)
    def __init__(self: Any, app: Any, *args: Any, **kwargs: Any) -> None:
        if _app_inside(app, Starlette) is None:
            state.wrapped_raw_apps += 1
            inner = app
            if not _is_asgi3(inner):  # ASGI2: app(scope) returns the coroutine to await

                async def inner(scope: Any, receive: Any, send: Any, asgi2: Any = app) -> None:
                    await asgi2(scope)(receive, send)

            app = Starlette(routes=[Mount("", app=inner)])  # the __init__ hook installs Afterwork
        # The proof that the run tested something: every client talks to an app with Afterwork.
        state.clients += 1
        if getattr(_app_inside(app, Starlette).state, "afterwork", None) is None:
            state.uncovered.append(state.current)
        original(self, app, *args, **kwargs)

    TestClient.__init__ = __init__  # type: ignore[method-assign]
    state.undo.append(lambda: setattr(TestClient, "__init__", original))


def _install_hooks(state: _State) -> None:
    from fastapi import FastAPI
    from starlette.applications import Starlette

    _wrap_init(state, Starlette)
    if "__init__" in FastAPI.__dict__:  # FastAPI's does not call Starlette's
        _wrap_init(state, FastAPI)
    _wrap_test_client(state)


def _close(aw: Any) -> None:
    """Stop the writer thread and close the store; a runner whose event loop is gone (a
    TestClient used without `with`) has nothing left to stop."""
    runner = aw.runner
    if runner is not None and (runner._loop is None or runner._loop.is_closed()):
        aw.runner = None
    with contextlib.suppress(Exception):
        asyncio.run(aw.shutdown())


# -- the report ------------------------------------------------------------------------------
def _message(report: pytest.TestReport | pytest.CollectReport) -> str:
    if isinstance(report.longrepr, tuple):  # a skip: (path, line, reason)
        return str(report.longrepr[2])
    crash = getattr(report.longrepr, "reprcrash", None)
    text = crash.message if crash is not None else str(report.longrepr)
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[0][:300] if lines else ""


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    if _STATE is not None:
        _STATE.current = item.nodeid


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    state = _STATE
    if state is None:
        return
    entry = state.outcomes.setdefault(report.nodeid, {"outcome": "passed", "message": ""})
    if entry["outcome"] in ("failed", "error"):
        return  # the first failure says what went wrong; a teardown error after it adds nothing
    if hasattr(report, "wasxfail"):
        entry["outcome"] = "xfailed" if report.skipped else "xpassed"
        entry["message"] = str(report.wasxfail)
    elif report.failed:
        entry["outcome"] = "failed" if report.when == "call" else "error"
        entry["message"] = f"{report.when}: {_message(report)}"
    elif report.skipped:
        entry["outcome"] = "skipped"
        entry["message"] = _message(report)


def pytest_collectreport(report: pytest.CollectReport) -> None:
    if _STATE is not None and report.failed:
        _STATE.outcomes[report.nodeid] = {"outcome": "error", "message": f"collect: {_message(report)}"}


def pytest_warning_recorded(warning_message: Any, when: str, nodeid: str, location: Any) -> None:
    if _STATE is not None and type(warning_message.message).__name__ == "AfterworkWarning":
        _STATE.warnings.setdefault(nodeid or "<collection>", []).append(str(warning_message.message))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    state = _STATE
    if state is None or state.report is None:
        return
    state.report.write_text(json.dumps({
        "mode": state.mode,
        "tests": state.outcomes,
        "afterwork_warnings": state.warnings,
        "apps_with_afterwork": len(state.installed),
        "bare_asgi_apps_mounted": state.wrapped_raw_apps,
        "test_clients": state.clients,
        "test_clients_without_afterwork": state.uncovered,
    }, indent=2, sort_keys=True))
