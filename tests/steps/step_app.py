"""The app `afterwork worker` processes run in the step crash tests: it stores nothing itself
(run_in_app=False); its runner runs the stepped tasks of step_tasks on the store the test
names, with short leases so that a killed worker's task is taken over within seconds."""

from __future__ import annotations

import os

from fastapi import FastAPI

from afterwork import Afterwork

from . import step_tasks  # noqa: F401  (registers the stepped tasks by name)

app = FastAPI()
aw = Afterwork(app, url=os.environ["AFTERWORK_URL"], run_in_app=False,
               lease_seconds=float(os.environ.get("AFTERWORK_TEST_LEASE", "2")), poll_seconds=0.1)
