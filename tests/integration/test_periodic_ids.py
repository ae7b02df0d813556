"""A periodic tick's task id is random (nobody computes it from the schedule); its tick key
keeps each tick stored once, in every store."""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from afterwork import Afterwork, TaskRecord, TaskState, periodic
from afterwork._models import Changes
from afterwork._schedule import SCHEDULES
from afterwork.stores import Store

from . import app_tasks
from .app_tasks import EVENTS


@pytest.fixture(autouse=True)
def _clean() -> Iterator[None]:
    EVENTS.clear()
    yield
    EVENTS.clear()


def _tick(key: str) -> TaskRecord:
    return TaskRecord(id=str(uuid.uuid4()), name="m:tick", payload='{"a":[],"k":{}}',
                      state=TaskState.QUEUED, run_at=1.0, created_at=1.0, tick_key=key)


def test_a_tick_key_is_stored_once_whatever_the_ids(store: Store) -> None:
    first, again = _tick("m:tick@60.000"), _tick("m:tick@60.000")
    store.apply(Changes(inserts_if_absent=[first]))
    store.apply(Changes(inserts_if_absent=[again, _tick("m:tick@120.000")]))
    assert store.get(first.id) is not None and store.get(again.id) is None
    assert len(store.query(name="m:tick")) == 2
    finished = dataclasses.replace(_tick("m:tick@180.000"), state=TaskState.SUCCEEDED)
    store.apply(Changes(inserts=[finished]))
    late = _tick("m:tick@180.000")  # a runner that comes late, after the tick ran
    store.apply(Changes(inserts_if_absent=[late]))
    assert store.get(late.id) is None


def test_periodic_task_ids_are_random_and_each_tick_runs_once(durable_url: str) -> None:
    decorated = periodic(every=0.4)(app_tasks.tick)
    try:
        apps = [FastAPI(), FastAPI()]
        afterworks = [Afterwork(app, url=durable_url, poll_seconds=0.05) for app in apps]
        with TestClient(apps[0]), TestClient(apps[1]):
            time.sleep(1.8)
        ids = [e[1] for e in EVENTS]
        records = [afterworks[0].store.get(i) for i in ids]
    finally:
        SCHEDULES[:] = [s for s in SCHEDULES if s.task is not decorated]
    assert ids and len(ids) == len(set(ids)), "a tick ran twice"
    keys = [r.tick_key for r in records if r is not None]
    assert len(keys) == len(ids) == len(set(keys))
    for task_id, key in zip(ids, keys, strict=True):
        assert key.startswith("tests.integration.app_tasks:tick@")
        for namespace in (uuid.NAMESPACE_URL, uuid.NAMESPACE_DNS, uuid.NAMESPACE_OID):
            assert task_id != str(uuid.uuid5(namespace, key))
        assert uuid.UUID(task_id).version != 5  # not derived from a name
