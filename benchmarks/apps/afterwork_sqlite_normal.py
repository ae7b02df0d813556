"""afterwork on its embedded SQLite store with ``synchronous=normal`` (not the default
``full``), tasks run by the in-app runner: what the other durability level costs.

The harness sets ``AFTERWORK_URL`` to a SQLite file in a fresh temporary directory.
"""

import os

from benchmarks.apps.common import afterwork_app

app = afterwork_app(url=f"{os.environ['AFTERWORK_URL']}?synchronous=normal")
