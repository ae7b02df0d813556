"""The web side (afterwork.web) and the core stay apart: the core never imports the web
package (only `_app.py`, which mounts it, and the CLI may), and the web package reaches the
core only through its `Console` and the core's plain data types, never the `Afterwork` object,
the runner, the writer or the store classes."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "afterwork"
MAY_IMPORT_WEB = {"_app.py", "cli.py"}
# What the web side may import of the core: data types, errors, events, the redactor, and the
# one asyncio helper. Everything else it needs comes through web/_console.py's Console.
WEB_MAY_USE = {"afterwork._models", "afterwork._events", "afterwork._errors", "afterwork._redact",
               "afterwork._aio"}


def _imports(path: Path) -> set[str]:
    """Absolute names of the modules `path` imports (relative imports resolved)."""
    module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    package = module.rsplit(".", 1)[0] if path.name != "__init__.py" else module
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parent = ".".join(parts[: len(parts) - node.level + 1])
                base = f"{parent}.{base}" if base else parent
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)  # `from . import web`
    return found


def test_the_core_never_imports_the_web_package() -> None:
    offenders = {
        str(path.relative_to(PACKAGE)): sorted(n for n in _imports(path) if n.startswith("afterwork.web"))
        for path in PACKAGE.rglob("*.py")
        if "web" not in path.relative_to(PACKAGE).parts[:1] and path.name not in MAY_IMPORT_WEB
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_web_package_reaches_the_core_only_through_its_console() -> None:
    web_files = sorted((PACKAGE / "web").glob("*.py"))
    assert web_files
    reached = {
        str(path.relative_to(PACKAGE)): sorted(
            n for n in _imports(path)
            if n.startswith("afterwork.") and not n.startswith("afterwork.web")
            and not any(n == ok or n.startswith(ok + ".") for ok in WEB_MAY_USE))
        for path in web_files
    }
    assert {k: v for k, v in reached.items() if v} == {}


def test_the_check_sees_relative_imports() -> None:
    names = _imports(PACKAGE / "_app.py")
    assert "afterwork.web" in names and "afterwork._asgi" in names
    assert "afterwork._models.TaskRecord" in _imports(PACKAGE / "web" / "_console.py")
