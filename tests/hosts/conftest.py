"""The host tier's fixtures: a network of namespaces (root and `ip` needed: skipped, saying
so, without them), and a forwarder that puts the test PostgreSQL on the bridge's address."""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from ..procs import Proc, free_port
from .netns import Network

START_SECONDS = 10.0


@pytest.fixture
def network() -> Iterator[Network]:
    if shutil.which("ip") is None:
        pytest.skip("the host tier needs the `ip` command (iproute2) to make network namespaces")
    if os.geteuid() != 0:
        pytest.skip("the host tier needs root to make network namespaces (CI runs it as root)")
    net = Network()
    try:
        yield net.create()
    finally:
        left = net.remove()
        assert left == [], f"namespaces or links left behind: {left}"


@pytest.fixture
def store_over_links(network: Network, pg_database: str, tmp_path: Path) -> Iterator[str]:
    """The fresh database's URL as the hosts reach it: the bridge's address, forwarded to the
    server on 127.0.0.1 (which listens there only)."""
    direct = urlsplit(pg_database)
    port = free_port()
    forwarder = Proc([sys.executable, "-m", "tests.hosts.forwarder", network.gateway, str(port),
                      direct.hostname or "127.0.0.1", str(direct.port or 5432)], {},
                     tmp_path / "forwarder.log")
    try:
        deadline = time.monotonic() + START_SECONDS
        while "forwarding" not in forwarder.output():
            assert forwarder.popen.poll() is None, forwarder.output()
            assert time.monotonic() < deadline, "the forwarder did not start"
            time.sleep(0.05)
        user = f"{direct.username}@" if direct.username else ""
        yield urlunsplit(direct._replace(netloc=f"{user}{network.gateway}:{port}"))
    finally:
        forwarder.stop()
