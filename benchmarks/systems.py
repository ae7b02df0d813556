"""The systems under test: one app module in ``benchmarks/apps`` plus one entry here each.

To add a system: write ``benchmarks/apps/NAME.py`` exposing a FastAPI ``app`` that serves
POST /abcd and schedules one task calling ``record_run`` (see ``apps/common.py``), then add a
``System`` below. ``worker`` is the command of a separate worker process, if the system needs
one; ``prepare`` runs once before each measurement (create a schema, empty a queue).
"""

from __future__ import annotations

import importlib.util
import socket
from dataclasses import dataclass

REDIS = ("127.0.0.1", 6379)
POSTGRES = ("127.0.0.1", 5432)
PG_URL = "postgresql://postgres@127.0.0.1:5432/afterwork_bench"  # created if missing
BASELINE = "fastapi_async"


@dataclass(frozen=True)
class System:
    name: str
    description: str
    modules: tuple[str, ...] = ()  # Python modules the app or its worker imports
    services: tuple[tuple[str, int], ...] = ()  # TCP services that must be listening
    worker: str = ""  # what follows ``python -m`` to start the worker; "": tasks run in the app
    prepare: str = ""  # what follows ``python -m`` to run before each measurement
    schedules_tasks: bool = True

    @property
    def app(self) -> str:
        return f"benchmarks.apps.{self.name}:app"

    def unavailable(self) -> str | None:
        """Why this system cannot run here, or None when it can."""
        for module in self.modules:
            if importlib.util.find_spec(module) is None:
                return f"not installed (no module `{module}`)"
        for host, port in self.services:
            try:
                socket.create_connection((host, port), timeout=1).close()
            except OSError:
                return f"no server at {host}:{port}"
        return None


SYSTEMS: tuple[System, ...] = (
    System("no_task", "same endpoint, no task (upper bound)", schedules_tasks=False),
    System("fastapi_async", "FastAPI BackgroundTasks, in memory, `async def` task"),
    System("fastapi_sync", "FastAPI BackgroundTasks, in memory, `def` task (thread pool)"),
    System("afterwork_sqlite", "afterwork, SQLite file, in-app runner", modules=("afterwork",)),
    System("afterwork_sqlite_normal", "afterwork, SQLite file with synchronous=normal, in-app runner",
           modules=("afterwork",)),
    System("durable_floor", "reference: the bare durable write (one SQLite row before the response, "
           "synchronous=full, deleted on success), no features"),
    System("durable_floor_table", "reference: the same bare write into afterwork's table (its "
           "indexes, ids and success UPDATE)", modules=("afterwork",)),
    System("durable_floor_pg", "reference: the bare durable write on PostgreSQL (one row per task "
           "before the response, deleted on success), no features", modules=("psycopg", "asyncpg"),
           services=(POSTGRES,), prepare="benchmarks.apps.afterwork_pg prepare"),
    System(
        "afterwork_sqlite_worker",
        "afterwork, SQLite file, one separate `afterwork worker` process",
        modules=("afterwork", "afterwork.__main__"),
        worker="afterwork worker benchmarks.apps.afterwork_sqlite_worker:app --log-level warning",
    ),
    System(
        "afterwork_pg",
        "afterwork, PostgreSQL, in-app runner",
        modules=("afterwork.stores.postgres", "psycopg", "asyncpg"),
        services=(POSTGRES,),
        prepare="benchmarks.apps.afterwork_pg prepare",
    ),
    System(
        "afterwork_pg_worker",
        "afterwork, PostgreSQL, one separate `afterwork worker` process",
        modules=("afterwork.stores.postgres", "psycopg", "asyncpg", "afterwork.__main__"),
        services=(POSTGRES,),
        worker="afterwork worker benchmarks.apps.afterwork_pg_worker:app --log-level warning",
        prepare="benchmarks.apps.afterwork_pg prepare",
    ),
    System(
        "pgqueuer_pg",
        "PgQueuer on PostgreSQL, one worker process",
        modules=("pgqueuer", "asyncpg"),
        services=(POSTGRES,),
        worker="benchmarks.apps.pgqueuer_pg worker",
        prepare="benchmarks.apps.pgqueuer_pg prepare",
    ),
    System(
        "arq_redis",
        "arq on Redis, one worker process",
        modules=("arq",),
        services=(REDIS,),
        worker="benchmarks.apps.arq_redis worker",
        prepare="benchmarks.apps.arq_redis prepare",
    ),
    System(
        "taskiq_redis",
        "Taskiq on Redis (stream broker), one worker process",
        modules=("taskiq", "taskiq_redis"),
        services=(REDIS,),
        worker="taskiq worker benchmarks.apps.taskiq_redis:broker --workers 1 --log-level WARNING",
        prepare="benchmarks.apps.taskiq_redis prepare",
    ),
    System(
        "celery_redis",
        "Celery on Redis, `.delay()` from the endpoint, one worker pool process",
        modules=("celery", "redis"),
        services=(REDIS,),
        worker="celery -A benchmarks.apps.celery_redis:celery_app worker --concurrency 1 --loglevel WARNING",
        prepare="benchmarks.apps.celery_redis prepare",
    ),
    System(
        "dramatiq_redis",
        "Dramatiq on Redis, `.send()` from the endpoint, one worker process (8 threads)",
        modules=("dramatiq", "redis"),
        services=(REDIS,),
        worker="dramatiq benchmarks.apps.dramatiq_redis --processes 1",
        prepare="benchmarks.apps.dramatiq_redis prepare",
    ),
    System(
        "procrastinate_pg",
        "Procrastinate on PostgreSQL, one worker process",
        modules=("procrastinate", "asyncpg"),
        services=(POSTGRES,),
        worker="benchmarks.apps.procrastinate_pg worker",
        prepare="benchmarks.apps.procrastinate_pg prepare",
    ),
)


def select(names: list[str] | None) -> list[System]:
    """The systems named (all when ``names`` is None), in table order; unknown names fail."""
    if names is None:
        return list(SYSTEMS)
    known = {system.name: system for system in SYSTEMS}
    unknown = [name for name in names if name not in known]
    if unknown:
        raise SystemExit(f"unknown system(s): {', '.join(unknown)}; known: {', '.join(known)}")
    return [system for system in SYSTEMS if system.name in names]
