"""afterwork on its embedded SQLite store, tasks run by the in-app runner.

The harness sets ``AFTERWORK_URL`` to a SQLite file in a fresh temporary directory. Every
afterwork app here uses ``strict=True``: a task that cannot be stored fails its request
instead of running in memory, so each accepted task in the table was stored first.
"""

from benchmarks.apps.common import afterwork_app

app = afterwork_app()
