"""Run Starlette's and FastAPI's own background-task tests with `Afterwork(app)` installed.

    ./scripts/upstream-tests                # baseline, then with Afterwork; compare; exit 0/1
    ./scripts/upstream-tests --mode on      # only with Afterwork (--mode off: only the baseline)
    ./scripts/upstream-tests --repeat 3     # with Afterwork 3 times: a failure in any counts
    ./scripts/upstream-tests --keep -- --tb=long   # keep the files and pytest's output

Nothing of upstream lives in this repository: the test files come from the sdists on PyPI of
exactly the installed starlette and fastapi (`pip download --no-binary :all:`), cached in
`<venv>/afterwork-upstream/` (or $AFTERWORK_UPSTREAM_CACHE), and are unpacked into a temporary
folder for each run. Each suite runs in its own pytest process with the upstream project's own
configuration (warnings are errors, strict markers) and our plugin
(`plugin/afterwork_upstream_plugin.py`), which installs `Afterwork(app)` on every app.

The baseline (`--afterwork=off`) must pass as it is. With Afterwork, every test must pass
except those listed in `expected-differences.txt` (`suite/test id | reason`), and each listed
test must still fail (or the list must lose it). Exit status: 0 as expected, 1 not as
expected, 2 the upstream files are not what was expected (a missing path), 3 the registry
could not be reached.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PLUGIN_DIR = HERE / "plugin"
EXPECTED_FILE = HERE / "expected-differences.txt"
DOWNLOAD_TIMEOUT_SECONDS = 300
SUITE_TIMEOUT_SECONDS = 900
EXIT_OK, EXIT_DIFFERENT, EXIT_UPSTREAM_CHANGED, EXIT_NO_REGISTRY = 0, 1, 2, 3


@dataclass(frozen=True)
class Suite:
    """One upstream project's test files to run (paths inside its sdist)."""

    package: str
    paths: tuple[str, ...]
    # Upstream tests that cannot run here for reasons unrelated to afterwork (node id -> why).
    deselect: dict[str, str] = field(default_factory=dict)
    unpack: tuple[str, ...] = ("tests", "pyproject.toml")


SUITES = (
    Suite("starlette", (
        "tests/test_background.py",       # BackgroundTask(s) on a Response
        "tests/middleware/test_base.py",  # background tasks behind BaseHTTPMiddleware
        "tests/test_testclient.py",       # TestClient itself, on apps with Afterwork
        "tests/test_responses.py",        # background on streaming and file responses
    )),
    Suite("fastapi", (
        "tests/test_tutorial/test_background_tasks",  # the docs' background_tasks examples
        "tests/test_dependency_contextmanager.py",    # tasks and `yield` dependencies
        "tests/test_response_dependency.py",          # BackgroundTasks with Depends/Annotated
        "tests/test_telemetry/test_background.py",    # a span per task, request data in tasks
    ), deselect={
        "tests/test_telemetry/test_background.py::test_background_task_integrations":
            "needs logfire and opentelemetry-instrumentation-fastapi; runs in a subprocess",
    }, unpack=("tests", "docs_src", "pyproject.toml")),
)


class RegistryUnreachable(Exception):
    pass


class UpstreamChanged(Exception):
    pass


# -- obtaining the upstream files ------------------------------------------------------------
def cache_dir() -> Path:
    configured = os.environ.get("AFTERWORK_UPSTREAM_CACHE")
    return Path(configured) if configured else Path(sys.prefix) / "afterwork-upstream"


def sdist(package: str, exact: str) -> Path:
    """The sdist of package==exact, downloaded once into the cache."""
    folder = cache_dir()
    for found in folder.glob(f"{package}-{exact}.tar.gz"):
        return found
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                   "--no-binary", ":all:", "--timeout", "20", "--retries", "2",
                   "--dest", tmp, f"{package}=={exact}"]
        try:
            done = subprocess.run(command, capture_output=True, text=True,
                                  timeout=DOWNLOAD_TIMEOUT_SECONDS, check=False)
        except subprocess.TimeoutExpired as exc:
            raise RegistryUnreachable(f"pip download {package}=={exact} timed out") from exc
        files = list(Path(tmp).glob(f"{package}-{exact}.tar.gz"))
        if done.returncode != 0 or not files:
            raise RegistryUnreachable(
                f"pip download {package}=={exact} failed (exit {done.returncode}): "
                f"{(done.stderr or done.stdout).strip()[-600:]}")
        target = folder / files[0].name
        files[0].replace(target)
        return target


def unpack(archive: Path, into: Path, wanted: tuple[str, ...]) -> None:
    """Only the test files, the docs' examples and the pytest configuration: never the
    package itself, so the installed starlette/fastapi is the one under test."""
    with tarfile.open(archive) as tar:
        members = []
        for member in tar.getmembers():
            parts = member.name.split("/", 1)
            if len(parts) == 2 and parts[1].split("/", 1)[0] in wanted:
                member.name = parts[1]
                members.append(member)
        try:
            tar.extractall(into, members=members, filter="data")
        except TypeError:  # Python without extraction filters
            tar.extractall(into, members=members)  # a PyPI sdist we asked for
    for path in wanted:
        if not (into / path).exists():
            raise UpstreamChanged(f"{archive.name} has no {path}/: cannot run its tests here")


# -- running ---------------------------------------------------------------------------------
def run_suite(suite: Suite, mode: str, work: Path, extra: list[str]) -> dict[str, Any]:
    """The plugin's report: each test's outcome (ids prefixed with the suite) and the apps and
    TestClients it saw."""
    exact = version(suite.package)
    root = work / f"{suite.package}-{exact}"
    if not root.exists():
        root.mkdir(parents=True)
        unpack(sdist(suite.package, exact), root, suite.unpack)
    missing = [p for p in suite.paths if not (root / p).exists()]
    if missing:
        raise UpstreamChanged(f"{suite.package} {exact}: its sdist has no {', '.join(missing)}")
    report = work / f"{suite.package}-{mode}.json"
    command = [sys.executable, "-m", "pytest", *suite.paths, "-p", "afterwork_upstream_plugin",
               f"--afterwork={mode}", f"--afterwork-report={report}", "-p", "no:cacheprovider",
               "-q", "--no-header", "-rN",
               "--tb=line"]  # the report keeps each failure's message; full tracebacks cost seconds
    for node in suite.deselect:
        command += ["--deselect", node]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(PLUGIN_DIR), *filter(None, [os.environ.get("PYTHONPATH")])]))
    env.pop("AFTERWORK_URL", None)  # each app gets its own SQLite file from the plugin
    print(f"== {suite.package} {exact}, Afterwork {mode}: pytest {' '.join(suite.paths)}",
          flush=True)
    started = time.monotonic()
    done = subprocess.run([*command, *extra], cwd=root, env=env, capture_output=True, text=True,
                          timeout=SUITE_TIMEOUT_SECONDS, check=False)
    print(f"   {time.monotonic() - started:.0f} s", flush=True)
    (work / f"{suite.package}-{mode}.log").write_text(done.stdout + done.stderr)  # kept by --keep
    if not report.exists():
        raise UpstreamChanged(f"pytest wrote no report (exit {done.returncode}):\n"
                              f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    found: dict[str, Any] = json.loads(report.read_text())
    found["tests"] = {f"{suite.package}/{node}": result for node, result in found["tests"].items()}
    return found


# -- comparing -------------------------------------------------------------------------------
FAILING = ("failed", "error", "xpassed")


MAY_PASS = "may pass: "  # the reason of a `|?` line: its test depends on timing


def read_expected(path: Path = EXPECTED_FILE) -> dict[str, str]:
    """`suite/test id | reason` per line; `*` in an id matches anything (say, every [trio]).
    `id |? reason`: a test whose outcome depends on timing; it is never reported as passing."""
    expected: dict[str, str] = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        test, sep, reason = line.partition(" | ")
        if not sep:
            test, sep, reason = line.partition(" |? ")
            reason = MAY_PASS + reason.strip() if sep and reason.strip() else ""
        if not sep or not reason.strip():
            raise SystemExit(f"{path}:{number}: write `suite/test id | reason`, got {line!r}")
        expected[test.strip()] = reason.strip()
    return expected


def _pattern(test: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in test.split("*")) + r"\Z")


def compare(results: dict[str, dict[str, str]], expected: dict[str, str]) -> dict[str, list[str]]:
    """Unexpected failures; entries of the list that explain no failure any more (every test
    they match passed: a pattern such as `starlette/*[trio*` may also match tests that never
    reach the app); and entries that match no test at all."""
    patterns = {entry: _pattern(entry) for entry in expected}
    matched: dict[str, list[str]] = {entry: [] for entry in expected}
    verdict: dict[str, list[str]] = {"unexpected_failures": [], "now_passing": [],
                                     "not_run": [], "expected_differences": []}
    for test, result in sorted(results.items()):
        listed = [entry for entry, pattern in patterns.items() if pattern.match(test)]
        for entry in listed:
            matched[entry].append(test)
        if result["outcome"] in FAILING:
            verdict["expected_differences" if listed else "unexpected_failures"].append(test)
    for entry, tests in matched.items():
        if not tests:
            verdict["not_run"].append(entry)
        elif (all(results[test]["outcome"] == "passed" for test in tests)
              and not expected[entry].startswith(MAY_PASS)):
            verdict["now_passing"].append(entry)
    return verdict


def merge(runs: list[dict[str, dict[str, str]]]) -> tuple[dict[str, dict[str, str]], list[str]]:
    """One result per test over repeated runs: a failure in any run wins (with its message);
    and the tests whose outcome changed from run to run."""
    merged: dict[str, dict[str, str]] = {}
    flaky: set[str] = set()
    for results in runs:
        for test, result in results.items():
            seen = merged.setdefault(test, result)
            if seen["outcome"] != result["outcome"]:
                flaky.add(test)
                if result["outcome"] in FAILING and seen["outcome"] not in FAILING:
                    merged[test] = result
    return merged, sorted(flaky)


def print_results(title: str, results: dict[str, dict[str, str]]) -> None:
    counts: dict[str, int] = {}
    print(f"\n-- {title}")
    for test, result in sorted(results.items()):
        outcome = result["outcome"]
        counts[outcome] = counts.get(outcome, 0) + 1
        why = result["message"] if outcome != "passed" else ""
        print(f"{outcome.upper():8} {test}" + (f"\n         {why}" if why else ""))
    print(f"-- {title}: " + ", ".join(f"{n} {k}" for k, n in sorted(counts.items())))


def run_mode(mode: str, work: Path, extra: list[str]) -> dict[str, Any]:
    """Every suite once in this mode: the tests' results and what the plugin saw."""
    seen: dict[str, Any] = {"tests": {}, "test_clients": 0, "uncovered": [], "in_memory": []}
    for suite in SUITES:
        found = run_suite(suite, mode, work, extra)
        seen["tests"].update(found["tests"])
        seen["test_clients"] += found["test_clients"]
        seen["uncovered"] += [f"{suite.package}/{t}" for t in found["test_clients_without_afterwork"]]
        seen["in_memory"] += [f"{suite.package}/{t}" for t in found["afterwork_warnings"]]
    return seen


def check_baseline(work: Path, extra: list[str], summary: dict[str, Any]) -> int:
    results = run_mode("off", work, extra)["tests"]
    print_results("baseline, without Afterwork", results)
    broken = sorted(t for t, r in results.items() if r["outcome"] in FAILING)
    summary["off"], summary["baseline_failures"] = results, broken
    if broken:
        print("\nThe baseline fails without Afterwork (a missing test dependency?):")
        print("\n".join(f"  {t}" for t in broken))
        return EXIT_DIFFERENT
    return EXIT_OK


def check_with_afterwork(work: Path, extra: list[str], repeat: int, expected: dict[str, str],
                         summary: dict[str, Any]) -> int:
    status = EXIT_OK
    runs = [run_mode("on", work, extra) for _ in range(repeat)]
    results, flaky = merge([run["tests"] for run in runs])
    title = "with Afterwork(app)" + (f", {repeat} runs (a failure in any counts)" if repeat > 1 else "")
    print_results(title, results)
    verdict = compare(results, expected)
    clients = sum(run["test_clients"] for run in runs)
    uncovered = sorted({test for run in runs for test in run["uncovered"]})
    in_memory = sorted({test for run in runs for test in run["in_memory"]})
    summary.update({"on": results, "comparison": verdict, "test_clients": clients,
                    "test_clients_without_afterwork": uncovered,
                    "tests_with_in_memory_tasks": in_memory})
    print(f"\n{len(in_memory)} tests added tasks afterwork cannot store (closures, bound methods):"
          " they ran in memory, with afterwork's warning")
    if clients and not uncovered:
        print(f"{clients} TestClients made, each on an app with Afterwork(app) installed")
    else:
        status = EXIT_DIFFERENT  # such a run proves nothing
        print(f"{clients} TestClients made; on an app WITHOUT Afterwork in: {uncovered}")
    timing = [entry for entry, reason in expected.items() if reason.startswith(MAY_PASS)]
    unlisted = [test for test in flaky if not any(_pattern(entry).match(test) for entry in timing)]
    summary["flaky"] = unlisted
    if flaky:
        print(f"\nOutcome changed between runs ({len(flaky)}; `|?` in the list: "
              f"{len(flaky) - len(unlisted)}):")
        print("\n".join(f"  {test}" for test in flaky))
    if unlisted:
        status = EXIT_DIFFERENT  # a test must pass every time, or be listed as timing-dependent
    print(f"\n{len(verdict['expected_differences'])} expected differences")
    for key, heading in (
        ("unexpected_failures", "Failing, and not in expected-differences.txt"),
        ("now_passing", "Passing, but listed in expected-differences.txt: remove them"),
        ("not_run", "Listed in expected-differences.txt, but no such test ran"),
    ):
        if verdict[key]:
            status = EXIT_DIFFERENT
            print(f"\n{heading} ({len(verdict[key])}):")
            print("\n".join(f"  {test}" for test in verdict[key]))
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--mode", choices=("both", "on", "off"), default="both")
    parser.add_argument("--repeat", type=int, default=1,
                        help="run the with-Afterwork suites N times; a failure in any run counts")
    parser.add_argument("--summary", type=Path, help="write the outcome and comparison as JSON")
    parser.add_argument("--keep", action="store_true",
                        help="keep the unpacked upstream files and pytest's output")
    parser.add_argument("pytest_args", nargs="*", help="after --: more pytest arguments")
    args = parser.parse_args(argv)
    expected = read_expected()
    work = Path(tempfile.mkdtemp(prefix="afterwork-upstream-run-"))
    summary: dict[str, Any] = {
        "versions": {suite.package: version(suite.package) for suite in SUITES},
        "expected": expected,
    }
    status = EXIT_OK
    try:
        if args.mode in ("both", "off"):
            status = max(status, check_baseline(work, args.pytest_args, summary))
        if args.mode in ("both", "on"):
            status = max(status, check_with_afterwork(work, args.pytest_args, max(1, args.repeat),
                                                      expected, summary))
    except RegistryUnreachable as exc:
        print(f"registry unreachable: {exc}", file=sys.stderr)
        status = EXIT_NO_REGISTRY
    except UpstreamChanged as exc:
        print(f"upstream files not as expected: {exc}", file=sys.stderr)
        status = EXIT_UPSTREAM_CHANGED
    finally:
        if args.keep:
            print(f"\nupstream files kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    summary["status"] = status
    if args.summary:
        args.summary.write_text(json.dumps(summary, indent=2, sort_keys=True))
    print("\nupstream tests: as expected" if status == EXIT_OK else f"\nupstream tests: exit {status}")
    return status


if __name__ == "__main__":
    sys.exit(main())
