"""The wheel a user installs: built from this checkout, installed into a fresh venv with every
extra, it holds the migrations, its CLI works, and the example service runs from it.

Needs the package index (or pip's cache) for the dependencies; pip's cache is reused.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import httpx

from tests.procs import free_port

ROOT = Path(__file__).resolve().parents[2]
EXTRAS = {"postgres": "psycopg", "examples": "uvicorn", "metrics": "prometheus_client",
          "otel": "opentelemetry.trace"}
INSTALL_SECONDS = 600


def run(*args: str | Path, cwd: Path = ROOT) -> str:
    done = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True,
                          timeout=INSTALL_SECONDS, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, f"{args} -> {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_the_wheel_installs_with_every_extra_and_runs_the_example(tmp_path: Path) -> None:
    run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", tmp_path / "dist", ROOT)
    [wheel] = (tmp_path / "dist").glob("afterwork-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    migrations = sorted(p.name for p in (ROOT / "src/afterwork/stores/migrations").glob("*.sql"))
    assert sorted(n.rsplit("/", 1)[1] for n in names if n.endswith(".sql")) == migrations
    assert "afterwork/py.typed" in names

    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", venv)
    python = venv / "bin/python"
    run(python, "-m", "pip", "install", "--quiet", f"{wheel}[{','.join(EXTRAS)}]")
    run(python, "-m", "pip", "check")  # every extra's requirements are met
    where = run(python, "-c", f"import afterwork, {', '.join(EXTRAS.values())}; print(afterwork.__file__)",
                cwd=tmp_path)
    assert str(venv) in where  # the installed wheel, not this checkout

    app_dir = tmp_path / "service"
    shutil.copytree(ROOT / "examples", app_dir / "examples")
    url = f"sqlite:///{tmp_path}/aw.db"
    port = free_port()
    env = {"AFTERWORK_URL": url, "NOTIFICATIONS_FILE": str(tmp_path / "n.jsonl"), "PATH": "/usr/bin:/bin"}
    server = subprocess.Popen([python, "-m", "uvicorn", "examples.server_details:app", "--host", "127.0.0.1",
                               "--port", str(port)], cwd=app_dir, env=env, stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                answer = httpx.post(f"{base}/abcd", json={"hostname": "db1", "ip": "10.0.0.7", "cpus": 8,
                                                          "memory_gb": 32}, timeout=5)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the example did not start"
                time.sleep(0.2)
        assert answer.status_code in (200, 201), answer.text
        task_id = answer.json()["notification_task"]
        state = httpx.get(f"{base}/afterwork/api/tasks/{task_id}?wait=20", timeout=30).json()["state"]
        assert state == "succeeded"
    finally:
        server.terminate()
        server.wait(30)
    listed = run(venv / "bin/afterwork", "list", "--json", "--url", url, cwd=tmp_path)
    assert task_id in listed
