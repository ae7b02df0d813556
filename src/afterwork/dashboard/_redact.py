"""Argument values whose names look like secrets are shown as "[redacted]": see
`afterwork._redact` (a core module, so that the CLI needs nothing of the dashboard)."""

from .._redact import DEFAULT_SECRET_NAMES, HIDDEN, Redactor, arguments, task_view

__all__ = ["DEFAULT_SECRET_NAMES", "HIDDEN", "Redactor", "arguments", "task_view"]
