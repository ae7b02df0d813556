"""afterwork on PostgreSQL, web-only app; tasks run by a separate ``afterwork worker``.

The worker is ``python -m afterwork worker benchmarks.apps.afterwork_pg_worker:app``; prepare
with ``python -m benchmarks.apps.afterwork_pg prepare``.
"""

from benchmarks.apps.afterwork_pg import PG_URL
from benchmarks.apps.common import afterwork_app

app = afterwork_app(url=PG_URL, run_in_app=False)
