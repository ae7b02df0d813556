from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from afterwork import Afterwork

from . import tasks_for_tests


@pytest.fixture(autouse=True)
def _clean_events() -> Iterator[None]:
    tasks_for_tests.EVENTS.clear()
    yield
    tasks_for_tests.EVENTS.clear()


@pytest.fixture
def serve() -> Iterator[Callable[..., TestClient]]:
    """serve(app, **afterwork_options) -> a TestClient with the app's lifespan running."""
    clients: list[TestClient] = []

    def start(app: FastAPI, url: str = "memory://", **options: Any) -> TestClient:
        Afterwork(app, url=url, **options)
        client = TestClient(app)
        client.__enter__()
        clients.append(client)
        return client

    yield start
    for client in clients:
        client.__exit__(None, None, None)
