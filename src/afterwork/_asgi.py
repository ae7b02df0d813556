"""The ASGI middleware: lifespan, the request's batch, and storing it before the response.

Data path of one request: open a batch -> the endpoint and its helpers add tasks -> the
response starts: the batch is written (one transaction, grouped with concurrent requests) and
only then is `http.response.start` passed on, or a 503 instead if the store refused -> the
response ends -> the stored tasks go to the runner, in-memory ones run as in Starlette.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
from typing import Any, Protocol

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import _locate
from ._batch import RequestBatch
from ._compat import current_batch
from ._errors import StoreError, public_detail
from ._intake import Intake
from ._settings import Settings

log = logging.getLogger("afterwork")


class Lifecycle(Protocol):
    """What the middleware needs of `Afterwork`: its parts, and starting and stopping them."""

    settings: Settings
    intake: Intake

    async def startup(self) -> None: ...
    def started_on(self) -> asyncio.AbstractEventLoop | None: ...
    async def ensure_started(self) -> None: ...
    async def shutdown(self) -> None: ...


class AfterworkMiddleware:
    def __init__(self, app: ASGIApp, afterwork: Lifecycle) -> None:
        self.app = app
        self.aw = afterwork

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self._lifespan(scope, receive, send)
            return
        if kind != "http":
            await self.app(scope, receive, send)
            return
        # The loop, looked up once a request (on Python 3.11 each lookup is a system call:
        # it compares the process id), is handed down to the batch's write.
        loop = self.aw.started_on()
        if loop is None:
            await self.aw.ensure_started()
            loop = asyncio.get_running_loop()
        test_client = _from_test_client(scope)
        if not _frozen and self.aw.settings.freeze_gc and _from_server(scope):
            freeze_startup_heap()
        batch = RequestBatch(self.aw.intake, loop, inline=self.aw.settings.inline_in_tests and test_client)
        token = current_batch.set(batch)
        refused: list[StoreError] = []

        async def send_after_commit(message: Message) -> None:
            kind = message["type"]
            if kind == "http.response.start":
                try:
                    await batch.commit()
                except StoreError as exc:
                    refused.append(exc)
                    await _send_503(send, exc)
                    return
            if refused:
                return
            await send(message)
            if kind == "http.response.body" and not message.get("more_body", False):
                batch.response_sent()

        try:
            await self.app(scope, receive, send_after_commit)
        except BaseException:
            batch.discard()
            batch.hand_over()
            raise
        finally:
            current_batch.reset(token)
        # Where nothing of the request's ran its background (the endpoint returned plain data
        # and no response carried the tasks, or they came from defer()), they run now.
        if (due := batch.run_here()) is not None:
            await due

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def receive_and_start() -> Message:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self.aw.startup()
                _locate.current.set(self.aw.intake)  # defer() in the app's lifespan code
            return message

        async def send_and_stop(message: Message) -> None:
            if message["type"] in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
                await self.aw.shutdown()
            await send(message)

        await self.app(scope, receive_and_start, send_and_stop)


_frozen = False
YOUNG_THRESHOLD = 10_000  # allocations between young collections once frozen (CPython: 700, 3.13: 2,000)
_INTERPRETER_THRESHOLDS = ((700, 10, 10), (2000, 10, 10))  # CPython's defaults (3.13: 2,000)


def freeze_startup_heap() -> None:
    """Once per process, at the first request a server sends, so after the app's start-up
    (never under a test client or httpx's ASGITransport: `gc.get_referrers`, which test tools
    use, does not see frozen objects): collect, then freeze what is alive (`gc.freeze()`), so
    that the collector never again scans the start-up heap (modules,
    classes, the app's routes and models: most of the objects). A stored request suspends
    once before its response, so its objects are alive together with those of the requests
    beside it and reach the oldest generation; each full collection would then scan the
    whole heap, tens of milliseconds that land on some request's latency. Frozen objects are
    still freed by reference counting; only cycles among them are never collected.

    Then, if the application left the collector's thresholds as the interpreter set them, the
    young generation's goes to YOUNG_THRESHOLD: the objects of the requests in flight are
    freed by reference counting before a collection would see them, instead of being scanned
    and promoted every 700 allocations (a fifth of what afterwork adds to a request, counted
    in instructions; docs/performance.md). Thresholds an application set are its own."""
    global _frozen
    if not _frozen:
        _frozen = True
        gc.collect()
        gc.freeze()
        threshold = gc.get_threshold()
        if threshold in _INTERPRETER_THRESHOLDS:
            gc.set_threshold(YOUNG_THRESHOLD, *threshold[1:])


def _from_server(scope: Scope) -> bool:
    """A server says which ASGI spec version it implements (uvicorn, Hypercorn, Granian);
    Starlette's TestClient and httpx's ASGITransport do not."""
    return "spec_version" in (scope.get("asgi") or {}) and not _from_test_client(scope)


def _from_test_client(scope: Scope) -> bool:
    """Starlette's TestClient asks for the debug extension; servers never do."""
    extensions = scope.get("extensions") or {}
    return "http.response.debug" in extensions


async def _send_503(send: Send, exc: StoreError) -> None:
    # The log gets the full reason (passwords masked); the client only what happened, never
    # the store's file, host, database or credentials.
    log.error("afterwork: answering 503, the request's tasks could not be stored: %s", exc)
    body = json.dumps({
        "detail": "The request was not processed: its background tasks could not be stored "
                  f"({public_detail(exc)}). Nothing was scheduled; retry later.",
    }).encode()
    headers: list[Any] = [(b"content-type", b"application/json"),
                          (b"content-length", str(len(body)).encode()), (b"retry-after", b"5")]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})
