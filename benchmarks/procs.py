"""Child processes: start pinned to a core, wait for HTTP, measure from /proc, stop by pid."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start(
    module_argv: list[str], cpu: int, env: dict[str, str], log: Path, cwd: Path
) -> subprocess.Popen[bytes]:
    """``taskset -c CPU python -m ...`` in a session of its own (so its pid is its group id)."""
    with log.open("ab") as out:
        return subprocess.Popen(
            ["taskset", "-c", str(cpu), sys.executable, "-m", *module_argv],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def run(module_argv: list[str], env: dict[str, str], log: Path, cwd: Path, timeout: float) -> None:
    """Run ``python -m ...`` to completion; fail with its log if it fails."""
    with log.open("ab") as out:
        done = subprocess.run(
            [sys.executable, "-m", *module_argv],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=timeout,
            check=False,
        )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(module_argv)} exited {done.returncode}; see {log}")


def wait_http(proc: subprocess.Popen[bytes], port: int, timeout: float) -> None:
    """Return once something answers HTTP on ``port`` (any status); bounded by ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with status {proc.returncode} before answering")
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
        try:
            conn.request("GET", "/_bench/ready")
            conn.getresponse().read()
            return
        except OSError:
            time.sleep(0.05)
        finally:
            conn.close()
    raise RuntimeError(f"server did not answer on port {port} within {timeout:.0f} s")


def stop(proc: subprocess.Popen[bytes], timeout: float = 15) -> None:
    """SIGINT (graceful shutdown); if it lingers, SIGKILL to its own process group."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # not reaped yet, so the group is still ours
        proc.wait(5)


def peak_rss_mb(pid: int) -> float:
    """VmHWM of one process, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for pid {pid}")


def group_cpu_seconds(pgid: int) -> float:
    """User + system CPU seconds of the live processes in process group ``pgid``."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # fields after "pid (comm) "
        if int(fields[2]) == pgid:  # field 5, pgrp
            total += int(fields[11]) + int(fields[12])  # fields 14 and 15, utime and stime
    return total / CLOCK_TICKS
