"""Real processes for the tests: uvicorn servers and afterwork workers, started and ended by pid."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
START_SECONDS = 30.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Proc:
    """A child process with its log in a file (read it when a test fails)."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        self._log_file = log.open("ab")
        self.popen = subprocess.Popen(args, cwd=ROOT, env={**os.environ, **env},
                                      stdin=subprocess.DEVNULL, stdout=self._log_file,
                                      stderr=subprocess.STDOUT)
        self.pid = self.popen.pid

    def kill(self) -> None:
        """SIGKILL: nothing gets to clean up."""
        if self.popen.poll() is None:
            os.kill(self.pid, signal.SIGKILL)
        self.popen.wait(10)
        self._log_file.close()

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM, then SIGKILL after `timeout`; the exit code."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log_file.close()
        return int(self.popen.returncode)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


# Start a program through a wrapper module that offsets its wall clock (tests/faults).
CLOCK_OFFSET = ("-m", "tests.faults.clock_offset")


class Server(Proc):
    def __init__(self, app: str, env: dict[str, str], log: Path, port: int | None = None,
                 via: tuple[str, ...] = ()) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        super().__init__([sys.executable, *via, "-m", "uvicorn", app, "--host", "127.0.0.1",
                          "--port", str(self.port), "--log-level", "warning"], env, log)
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise RuntimeError(f"{app} exited at start:\n{self.output()}")
            try:
                httpx.get(f"{self.url}/afterwork/api/tasks?limit=1", timeout=1.0)
                return
            except httpx.TransportError:
                time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"{app} did not answer within {START_SECONDS}s:\n{self.output()}")


def worker(target: str, env: dict[str, str], log: Path, *args: str,
           via: tuple[str, ...] = ()) -> Proc:
    return Proc([sys.executable, *via, "-m", "afterwork", "worker", target, *args], env, log)


def runners_alive(url: str) -> int:
    """How many runners report to the store (by heartbeat; a stopped one removes itself)."""
    sql = "SELECT COUNT(*) FROM afterwork_runners"
    try:
        if url.startswith("sqlite"):
            import sqlite3
            from contextlib import closing

            with closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as conn:
                return int(conn.execute(sql).fetchone()[0])
        import psycopg

        with psycopg.connect(url) as conn:
            row = conn.execute(sql).fetchone()
            return int(row[0]) if row else 0
    except Exception:  # not created yet
        return 0


def wait_for(check: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"waited {seconds}s for {what}")


def complete_lines(log: Path) -> list[str]:
    """The lines of a log other processes are still appending to: a last line not yet ended
    by its newline is left for the next read (it is half-written, not bad)."""
    text = log.read_text()
    return text[: text.rfind("\n") + 1].splitlines()
