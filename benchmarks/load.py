"""Drive POST /abcd with wrk (or the Python fallback), pinned to its own core."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).parent


@dataclass(frozen=True)
class Load:
    requests: int  # responses received
    seconds: float
    failed: int  # responses with status >= 400
    socket_errors: int
    p50_ms: float
    p99_ms: float

    @property
    def ok(self) -> int:
        return self.requests - self.failed

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


def generator(choice: str) -> str:
    """``wrk`` or ``python``: what ``choice`` (auto, wrk, python) resolves to on this machine."""
    if choice == "auto":
        return "wrk" if shutil.which("wrk") else "python"
    if choice == "wrk" and not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (apt-get install -y wrk), or use --load python")
    return choice


def drive(tool: str, port: int, connections: int, duration: int, cpu: int, nice: int = 0) -> Load:
    """Run one bounded load against 127.0.0.1:port and return its summary. ``nice`` below 0
    puts the load generator ahead of what shares its core (the workers, in the split placement)."""
    if tool == "wrk":
        script, url = HERE / "post.lua", f"http://127.0.0.1:{port}"
        argv = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--timeout=10s", f"-s{script}", url]
    else:
        argv = [sys.executable, "-m", "benchmarks.pyclient", f"--port={port}"]
        argv += [f"--connections={connections}", f"--duration={duration}"]
    priority = ["nice", "-n", str(nice)] if nice else []
    done = subprocess.run(
        [*priority, "taskset", "-c", str(cpu), *argv],
        cwd=HERE.parent,
        capture_output=True,
        text=True,
        timeout=duration + 60,
        check=True,
    )
    for line in done.stdout.splitlines():
        if line.startswith("LOAD_JSON "):
            return Load(**json.loads(line.removeprefix("LOAD_JSON ")))
    raise RuntimeError(f"{tool} printed no summary:\n{done.stdout}\n{done.stderr}")
