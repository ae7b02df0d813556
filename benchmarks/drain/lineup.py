"""The systems of the side-by-side drain, each on its own store, with its worker command.

Every worker runs `BENCH_CONCURRENCY` tasks at once (64 by default) by its own means:
asyncio tasks (afterwork, PgQueuer, Procrastinate, Taskiq, arq) or threads (Celery's
`threads` pool, Dramatiq's worker threads). Otherwise each runs with its defaults, except
arq's poll delay (see `peers/arq_redis.py`) and Celery's start-up chatter (gossip, mingle,
heartbeat off: they only matter to a cluster's monitoring).
"""

from __future__ import annotations

from dataclasses import dataclass

from benchmarks.systems import POSTGRES, REDIS, System

PEERS = "benchmarks.drain.peers"


@dataclass(frozen=True)
class DrainSystem:
    name: str
    store: str  # "SQLite", "PostgreSQL" or "Redis"
    module: str  # `python -m` module with `prepare` and `enqueue N`
    worker: tuple[str, ...]  # what follows `python -m`; {concurrency} is filled in
    modules: tuple[str, ...] = ()
    services: tuple[tuple[str, int], ...] = ()
    afterwork_url: str = ""  # "sqlite": a file in the case's temp dir; "pg": the drain database

    @property
    def peer(self) -> bool:
        return not self.name.startswith("afterwork")

    def unavailable(self) -> str | None:
        return System(self.name, "", modules=self.modules, services=self.services).unavailable()

    def worker_argv(self, concurrency: int) -> list[str]:
        return [part.format(concurrency=concurrency) for part in self.worker]


AFTERWORK_WORKER = ("afterwork", "worker", f"{PEERS}.afterwork_store:aw", "--log-level", "warning")

SYSTEMS: tuple[DrainSystem, ...] = (
    DrainSystem("afterwork_sqlite", "SQLite", f"{PEERS}.afterwork_store", AFTERWORK_WORKER,
                modules=("afterwork",), afterwork_url="sqlite"),
    DrainSystem("afterwork_pg", "PostgreSQL", f"{PEERS}.afterwork_store", AFTERWORK_WORKER,
                modules=("afterwork.stores.postgres", "psycopg", "asyncpg"), services=(POSTGRES,),
                afterwork_url="pg"),
    DrainSystem("pgqueuer_pg", "PostgreSQL", f"{PEERS}.pgqueuer_pg", (f"{PEERS}.pgqueuer_pg", "worker"),
                modules=("pgqueuer", "asyncpg"), services=(POSTGRES,)),
    DrainSystem("procrastinate_pg", "PostgreSQL", f"{PEERS}.procrastinate_pg",
                (f"{PEERS}.procrastinate_pg", "worker"),
                modules=("procrastinate", "asyncpg"), services=(POSTGRES,)),
    DrainSystem("celery_redis", "Redis", f"{PEERS}.celery_redis",
                ("celery", "-A", f"{PEERS}.celery_redis:celery_app", "worker", "--pool", "threads",
                 "--concurrency", "{concurrency}", "--without-gossip", "--without-mingle",
                 "--without-heartbeat", "--loglevel", "WARNING"),
                modules=("celery", "redis"), services=(REDIS,)),
    DrainSystem("dramatiq_redis", "Redis", f"{PEERS}.dramatiq_redis",
                ("dramatiq", f"{PEERS}.dramatiq_redis", "--processes", "1", "--threads",
                 "{concurrency}"),
                modules=("dramatiq", "redis"), services=(REDIS,)),
    DrainSystem("taskiq_redis", "Redis", f"{PEERS}.taskiq_redis",
                ("taskiq", "worker", f"{PEERS}.taskiq_redis:broker", "--workers", "1",
                 "--max-async-tasks", "{concurrency}", "--log-level", "WARNING"),
                modules=("taskiq", "taskiq_redis"), services=(REDIS,)),
    DrainSystem("arq_redis", "Redis", f"{PEERS}.arq_redis", (f"{PEERS}.arq_redis", "worker"),
                modules=("arq",), services=(REDIS,)),
)


def select(names: list[str] | None) -> list[DrainSystem]:
    if names is None:
        return list(SYSTEMS)
    known = {s.name: s for s in SYSTEMS}
    if unknown := [n for n in names if n not in known]:
        raise SystemExit(f"unknown system(s): {', '.join(unknown)}; known: {', '.join(known)}")
    return [s for s in SYSTEMS if s.name in names]
