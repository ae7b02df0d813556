"""The package's structure, checked from its own source: no import circle, `Afterwork` (the
composition root in `_app`) imported by nothing it builds, the web side (`afterwork.web`)
kept apart from the core, no module reaching into another's private names, and every module
importable alone, in a fresh interpreter."""

from __future__ import annotations

import ast
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import afterwork

PACKAGE = Path(afterwork.__file__).parent
# Above the composition root: what uses an Afterwork (the package's lazy names, the worker
# process, the test helpers, the command line). Everything else is built by it.
ABOVE_THE_ROOT = {"afterwork", "afterwork.__main__", "afterwork._worker", "afterwork.testing",
                  "afterwork.cli"}


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> dict[str, set[str]]:
    """{imported module of the package: the names taken from it}, every import in the file
    (under TYPE_CHECKING and inside functions too)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: dict[str, set[str]] = {}
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("afterwork"):
                    found.setdefault(alias.name, set())
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if not module.startswith("afterwork"):
                continue
            for alias in node.names:
                target = f"{module}.{alias.name}"
                if target in MODULES:  # `from . import _codec`: the module itself
                    found.setdefault(target, set())
                else:
                    found.setdefault(module, set()).add(alias.name)
    return found


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def test_the_scan_sees_the_package() -> None:
    assert {"afterwork._app", "afterwork._enqueue", "afterwork._intake",
            "afterwork._runner"} <= set(MODULES)
    assert "afterwork._enqueue" in GRAPH["afterwork._batch"]  # the scan reads relative imports


def test_there_is_no_import_circle() -> None:
    edges = {m: {t for t in targets if t in MODULES and t != "afterwork"}
             for m, targets in GRAPH.items() if m != "afterwork"}
    state: dict[str, str] = {}
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = "open"
        path.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == "open":
                circle = [*path[path.index(nxt):], nxt]
                pytest.fail("import circle: " + " -> ".join(circle))
            if nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = "done"

    for module in sorted(edges):
        if module not in state:
            visit(module)


def test_only_what_uses_afterwork_imports_the_composition_root() -> None:
    importers = sorted(m for m, targets in GRAPH.items() if "afterwork._app" in targets)
    assert set(importers) <= ABOVE_THE_ROOT, importers


# Outside afterwork.web, only the composition root (which mounts it) and the command line may
# import it. The web side may use of the core only its plain data and the redactor; the rest
# (settings, store reads, retry and cancel, events) comes through web/_console.py's Console.
MAY_IMPORT_THE_WEB = {"afterwork._app", "afterwork.cli"}
THE_WEB_MAY_USE = {"afterwork._models", "afterwork._events", "afterwork._errors",
                   "afterwork._redact", "afterwork._aio"}


def _is_web(module: str) -> bool:
    return module == "afterwork.web" or module.startswith("afterwork.web.")


def test_the_core_never_imports_the_web_side() -> None:
    importers = sorted(m for m, targets in GRAPH.items()
                       if not _is_web(m) and any(_is_web(t) for t in targets))
    assert set(importers) <= MAY_IMPORT_THE_WEB, importers
    assert "afterwork.web" in GRAPH["afterwork._app"]  # the scan sees `from . import web`


def test_the_web_side_reaches_the_core_only_through_its_console() -> None:
    web = {m: targets for m, targets in GRAPH.items() if _is_web(m)}
    assert "afterwork.web._console" in web
    reached = sorted(f"{m} imports {t}" for m, targets in web.items() for t in targets
                     if not _is_web(t) and t not in THE_WEB_MAY_USE)
    assert reached == []


def test_no_module_takes_another_modules_private_names() -> None:
    reaching = []
    for module, targets in GRAPH.items():
        for target, names in targets.items():
            private = sorted(n for n in names if n.startswith("_") and not n.startswith("__"))
            if private:
                reaching.append(f"{module} takes {', '.join(private)} from {target}")
    assert reaching == []


def _import_alone(module: str) -> tuple[str, int, str]:
    done = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True,
                          text=True, timeout=120, check=False)
    return module, done.returncode, done.stderr[-2000:]


def test_every_module_imports_alone_in_a_fresh_interpreter() -> None:
    optional = {"afterwork.stores.postgres"}  # needs the postgres extra, installed in tests
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(_import_alone, sorted(set(MODULES) - {"afterwork.__main__"})))
    failed = [f"{m}: {err}" for m, code, err in results if code != 0 and m not in optional]
    assert failed == []
