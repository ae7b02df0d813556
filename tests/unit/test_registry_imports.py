"""A stored name is imported only from the application's own folders: a module that merely
shares the package's name elsewhere (a namespace package's other part) is never imported, so
none of its code runs."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from afterwork._errors import UnknownTaskError
from afterwork._redact import find_function
from afterwork._registry import Registry


@pytest.fixture
def namespace(tmp_path: Path) -> Iterator[Path]:
    """`awns` spread over two folders: the app's (app.py, jobs.py) and a foreign one (evil.py,
    which leaves a marker file when imported)."""
    own, foreign = tmp_path / "own" / "awns", tmp_path / "foreign" / "awns"
    own.mkdir(parents=True)
    foreign.mkdir(parents=True)
    (own / "app.py").write_text("def handler() -> None: ...\n")
    (own / "jobs.py").write_text("def send(password: str) -> None: ...\n")
    marker = tmp_path / "imported"
    (foreign / "evil.py").write_text(f"open({str(marker)!r}, 'w').close()\ndef run() -> None: ...\n")
    sys.path[:0] = [str(tmp_path / "foreign"), str(tmp_path / "own")]
    try:
        yield marker
    finally:
        sys.path[:] = [p for p in sys.path if not p.startswith(str(tmp_path))]
        for name in [m for m in sys.modules if m == "awns" or m.startswith("awns.")]:
            del sys.modules[name]


def test_a_stored_name_outside_the_apps_folders_is_refused_without_importing_it(
    namespace: Path,
) -> None:
    import awns.app  # type: ignore[import-not-found]  # the application's module

    registry = Registry()
    registry.allow_packages([awns.app.__name__])
    with pytest.raises(UnknownTaskError, match="not a file of the application's packages"):
        registry.resolve("awns.evil:run")
    assert not namespace.exists() and "awns.evil" not in sys.modules
    assert registry.resolve("awns.jobs:send").__module__ == "awns.jobs"  # its own: recovers


def test_redaction_looks_functions_up_without_importing_foreign_modules(namespace: Path) -> None:
    assert find_function("os:system") is None
    assert find_function("awns.evil:run") is None
    assert not namespace.exists()
