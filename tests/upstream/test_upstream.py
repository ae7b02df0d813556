"""Starlette's and FastAPI's own background-task tests, run with Afterwork(app) on every app.

The driver (`./scripts/upstream-tests`, tests/upstream/run.py) fetches the test files of the
installed versions from PyPI, runs them once without Afterwork (they must pass) and once with
it, and compares with tests/upstream/expected-differences.txt. Outside CI an unreachable
registry skips this test; in CI it fails it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.upstream.run import EXIT_NO_REGISTRY

REPO = Path(__file__).resolve().parents[2]
RUN_TIMEOUT_SECONDS = 1500
# With Afterwork, CI runs the suites 3 times: a test that passes at random must fail this, not
# slip through. Once elsewhere, to keep `./scripts/test` quick (`--repeat` by hand).
REPEAT = 3 if os.environ.get("CI") == "true" else 1


@pytest.mark.timeout(RUN_TIMEOUT_SECONDS + 60)
@pytest.mark.xfail(strict=True, reason=(
    "until Starlette's and FastAPI's own classes join the request's batch and TestClient "
    "requests see their tasks' effects; strict, so this marker goes when that lands"))
def test_upstream_background_task_tests_pass_with_afterwork_installed(tmp_path: Path) -> None:
    summary_file = tmp_path / "summary.json"
    done = subprocess.run(
        [sys.executable, "-m", "tests.upstream.run", "--repeat", str(REPEAT),
         "--summary", str(summary_file)],
        cwd=REPO, capture_output=True, text=True, timeout=RUN_TIMEOUT_SECONDS, check=False)
    output = f"{done.stdout[-12000:]}\n{done.stderr[-4000:]}"
    if done.returncode == EXIT_NO_REGISTRY:
        message = f"PyPI is unreachable, so the upstream tests cannot be fetched: {done.stderr.strip()}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    assert summary_file.exists(), output
    summary = json.loads(summary_file.read_text())
    assert summary["baseline_failures"] == [], output
    comparison = summary["comparison"]
    assert comparison["unexpected_failures"] == [], output
    assert comparison["now_passing"] == [], output
    assert comparison["not_run"] == [], output
    assert summary["flaky"] == [], output
    assert summary["test_clients"] > 0, output
    assert done.returncode == 0, output
