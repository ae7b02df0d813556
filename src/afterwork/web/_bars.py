"""A task's progress and result as the dashboard shows them: a bar (HTML's own <progress>,
no script) with the report in words, "attempt 2, 3 of 10: note", and the result as JSON."""

from __future__ import annotations

import json
from html import escape
from typing import Any

from .._models import progress_text


def progress_bar(progress: dict[str, Any] | None) -> str:
    """A bar filled `done` of `total` (an indeterminate bar when the total is unknown), with
    its words; empty without a report."""
    if not progress or not isinstance(progress.get("done"), int | float):
        return ""
    done, total = progress["done"], progress.get("total")
    if isinstance(total, int | float) and total > 0:
        bar = f"<progress value='{min(done, total)}' max='{total}'></progress>"
    else:
        bar = "<progress></progress>"
    return f"<span class='progress'>{bar} {escape(progress_text(progress))}</span>"


def result_section(info: dict[str, Any]) -> str:
    """The result (or why it could not be stored) on a task's page; empty when it has none."""
    if info.get("result_error"):
        return f"<h2>Result</h2><p>not storable: {escape(str(info['result_error']))}</p>"
    if info.get("result") is None:
        return ""
    return f"<h2>Result</h2><pre id='result'>{escape(json.dumps(info['result'], indent=2))}</pre>"
