"""The package's surface: every exported name resolves (they are imported on first use), and
the CLI's default store is the app's."""

from __future__ import annotations

import subprocess
import sys

import pytest

import afterwork


def test_every_exported_name_resolves_on_first_use() -> None:
    code = ("import sys, afterwork; assert 'afterwork._app' not in sys.modules; "
            "[getattr(afterwork, n) for n in afterwork.__all__]; print('ok')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "ok", done.stderr
    assert set(dir(afterwork)) >= set(afterwork.__all__)


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="NoSuchThing"):
        afterwork.NoSuchThing  # type: ignore[attr-defined]  # noqa: B018


def test_the_cli_default_store_is_the_apps(monkeypatch: pytest.MonkeyPatch) -> None:
    from afterwork import Afterwork
    from afterwork._cli_store import DEFAULT_URL as CLI_DEFAULT

    monkeypatch.delenv("AFTERWORK_URL", raising=False)
    assert Afterwork().url == CLI_DEFAULT


def test_passwords_are_masked_in_store_urls() -> None:
    from afterwork._cli_store import masked

    assert masked("postgresql://app:s3cr%40t@db:5432/x?sslmode=require") == (
        "postgresql://app:***@db:5432/x?sslmode=require")
    assert masked("postgresql://app@db/x") == "postgresql://app@db/x"
    assert masked("sqlite:///./afterwork.db") == "sqlite:///./afterwork.db"



def test_the_oldest_constraints_pin_every_declared_floor() -> None:
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    text = (root / "pyproject.toml").read_text()
    runtime = text.split("dependencies = [", 1)[1].split("test = [", 1)[0]  # runtime + extras
    floors = {name.lower(): version for name, version in
              re.findall(r'"([A-Za-z][\w-]*)(?:\[[\w,]+\])?>=([\w.]+)"', runtime)}
    pins = dict(line.split("==") for line in (root / ".ci/oldest-constraints.txt").read_text().splitlines()
                if line and not line.startswith("#"))
    def same(a: str | None, b: str) -> bool:  # 2.7 == 2.7.0
        return a is not None and (
            (a.split(".") + ["0"] * 3)[:3] == (b.split(".") + ["0"] * 3)[:3])

    assert floors and all(same(pins.get(name), version) for name, version in floors.items()), (floors, pins)
