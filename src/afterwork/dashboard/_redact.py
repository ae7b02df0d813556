"""Argument values whose names look like secrets are shown as "[redacted]"."""

from __future__ import annotations

import inspect
import json
import re
from typing import Any

from .._registry import REGISTRY

SECRET_NAME = re.compile(r"pass|token|secret|key|authorization|credential|cookie", re.IGNORECASE)
HIDDEN = "[redacted]"


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: HIDDEN if SECRET_NAME.search(str(k)) else _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def arguments(name: str, payload: str) -> dict[str, Any]:
    """{"args": [...], "kwargs": {...}} with secrets hidden, positional ones by parameter name
    (when this process knows the function)."""
    try:
        data = json.loads(payload)
    except ValueError:
        return {"args": [], "kwargs": {}, "undecodable": True}
    args, kwargs = list(data.get("a", [])), dict(data.get("k", {}))
    func = REGISTRY.known(name)
    if func is not None:
        try:
            params = list(inspect.signature(getattr(func, "func", func)).parameters)
        except (TypeError, ValueError):
            params = []
        args = [HIDDEN if i < len(params) and SECRET_NAME.search(params[i]) else v
                for i, v in enumerate(args)]
    return {"args": _clean(args), "kwargs": _clean(kwargs)}
