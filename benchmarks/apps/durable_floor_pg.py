"""The durable floor (see `durable_floor`) on PostgreSQL: the bare write, full durability."""

from benchmarks.apps.durable_floor import PostgresTable, make_app

app = make_app(PostgresTable())
