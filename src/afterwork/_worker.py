"""A worker process: the app's lifespan (so its start-up code runs), a runner, no HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette

from ._app import Afterwork, afterwork_of
from ._errors import ConfigurationError, mask_passwords
from ._registry import REGISTRY

log = logging.getLogger("afterwork")


def load(target: str) -> tuple[Starlette | None, Afterwork]:
    """`package.module:attr` -> (the app or None, its Afterwork). The module's package joins
    the application's packages, so its module-level tasks may run."""
    module_name, _, attr = target.partition(":")
    if not module_name or not attr:
        raise ConfigurationError(f"{target!r}: write MODULE:ATTR, e.g. examples.server_details:app")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # as uvicorn does: the app's code is where we stand
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigurationError(f"cannot import {module_name!r} ({exc}); run from the "
                                 "directory that holds it, or fix PYTHONPATH") from exc
    obj: Any = module
    for part in attr.split("."):
        obj = getattr(obj, part, None)
    REGISTRY.allow_packages([module_name])
    if isinstance(obj, Afterwork):
        return None, obj
    if isinstance(obj, Starlette):
        return obj, afterwork_of(obj)
    raise ConfigurationError(f"{target} is {type(obj).__name__}: name a FastAPI/Starlette app "
                             "or an Afterwork object")


@contextlib.asynccontextmanager
async def app_lifespan(app: Starlette) -> AsyncIterator[None]:
    """Run the app's ASGI lifespan around the worker (its start-up code: pools, clients)."""
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    started, stopped = asyncio.Event(), asyncio.Event()
    failure: list[str] = []

    async def send(message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind.endswith(".failed"):
            failure.append(message.get("message", ""))
        (started if kind.startswith("lifespan.startup") else stopped).set()

    scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": {}}
    running = asyncio.create_task(app(scope, inbox.get, send))  # type: ignore[arg-type]
    await inbox.put({"type": "lifespan.startup"})
    await asyncio.wait([running, asyncio.create_task(started.wait())],
                       return_when=asyncio.FIRST_COMPLETED)
    if failure or running.done():
        raise ConfigurationError(f"the app's start-up failed: {failure or running.exception()}")
    try:
        yield
    finally:
        await inbox.put({"type": "lifespan.shutdown"})
        await stopped.wait()
        await running


async def run_worker(app: Starlette | None, aw: Afterwork, *, lifespan: bool = True) -> None:
    """Run until SIGTERM or SIGINT, then shut down gracefully (`grace_seconds`)."""
    aw.configure(run_in_app=True, runner_kind="worker")  # this process exists to run tasks
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if app is not None and lifespan:
        async with app_lifespan(app):  # our middleware starts the runner at start-up
            await aw.ensure_started()
            log.info("afterwork worker %s running on %s", aw.runner and aw.runner.owner,
                     mask_passwords(aw.url))
            await stop.wait()
            log.info("afterwork worker stopping: finishing running tasks (up to %ss)",
                     aw.settings.grace_seconds)
    else:
        await aw.startup()
        log.info("afterwork worker %s running on %s", aw.runner and aw.runner.owner,
                 mask_passwords(aw.url))
        await stop.wait()
        await aw.shutdown()
