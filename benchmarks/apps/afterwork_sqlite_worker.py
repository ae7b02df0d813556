"""afterwork on its embedded SQLite store, tasks run by a separate ``afterwork worker`` process.

The harness sets ``AFTERWORK_URL`` to a SQLite file in a fresh temporary directory; the worker
is ``python -m afterwork worker benchmarks.apps.afterwork_sqlite_worker:app``.
"""

from benchmarks.apps.common import afterwork_app

app = afterwork_app(run_in_app=False)
