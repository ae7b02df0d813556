"""A real PgBouncer in transaction pooling mode (Debian's `pgbouncer`), started by the tests on
a free 127.0.0.1 port in front of the test PostgreSQL, stopped by pid; each test gets a fresh
database of its own, reached through it (PgBouncer 1.18 refuses the `options` start-up
parameter the other tiers use to pick a schema). Server connections are handed out in turn
(`server_round_robin`), so a client's transactions really do move between them."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from ..procs import Proc, free_port

START_SECONDS = 15.0
INI = """\
[databases]
* = host={host} port={port}
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {listen_port}
unix_socket_dir =
auth_type = trust
auth_file = {auth_file}
pool_mode = transaction
server_round_robin = 1
default_pool_size = 20
max_client_conn = 200
pidfile =
logfile =
"""


@dataclass(frozen=True)
class Bouncer:
    """A running PgBouncer and the URLs of one fresh database: through it, and direct."""

    pooled: str
    direct: str
    database: str


@pytest.fixture(scope="module")
def pgbouncer_port(pg_server: str) -> Iterator[int]:
    binary = shutil.which("pgbouncer") or ("/usr/sbin/pgbouncer"
                                           if os.path.exists("/usr/sbin/pgbouncer") else None)
    if binary is None:
        message = "PgBouncer is not installed: apt-get install -y pgbouncer"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    server = urlsplit(pg_server)
    # PgBouncer will not run as root (`-u` drops to the postgres user): its directory must be
    # readable by that user, which pytest's own tmp directories are not.
    workdir = Path(tempfile.mkdtemp(prefix="aw-pgbouncer-"))
    workdir.chmod(0o755)
    port = free_port()
    auth_file = workdir / "users.txt"
    auth_file.write_text(f'"{server.username or "postgres"}" ""\n')
    ini = workdir / "pgbouncer.ini"
    ini.write_text(INI.format(host=server.hostname, port=server.port or 5432, listen_port=port,
                              auth_file=auth_file))
    for path in (auth_file, ini):
        path.chmod(0o644)
    as_user = ["-u", "postgres"] if os.geteuid() == 0 else []
    proc = Proc([binary, *as_user, str(ini)], {}, workdir / "pgbouncer.log")
    try:
        _wait_listening(proc, port)
        yield port
    finally:
        proc.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def _wait_listening(proc: Proc, port: int) -> None:
    import socket

    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            raise RuntimeError(f"pgbouncer exited at start:\n{proc.output()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"pgbouncer did not listen within {START_SECONDS}s:\n{proc.output()}")


@pytest.fixture
def bouncer(pg_database: str, pgbouncer_port: int) -> Bouncer:
    direct = urlsplit(pg_database)
    user = f"{direct.username}@" if direct.username else ""
    pooled = urlunsplit(direct._replace(netloc=f"{user}127.0.0.1:{pgbouncer_port}"))
    return Bouncer(pooled, pg_database, direct.path.lstrip("/"))
