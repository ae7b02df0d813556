"""afterwork's web side: the status API, its Server-Sent Events, the dashboard page, its auth,
Prometheus metrics and OpenTelemetry spans.

The core never imports this package; `Afterwork(app)` calls `mount(app, aw.console)` once,
handing it what makes the `Console` (`_console.py`), all that the web side sees of afterwork.
The endpoints are a route of the app (`_mount.py`), so the app's own middleware applies.
"""

from ._console import Console, TaskReads, WebSettings
from ._mount import mount

__all__ = ["Console", "TaskReads", "WebSettings", "mount"]
