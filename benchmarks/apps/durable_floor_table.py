"""The durable floor (see `durable_floor`) written into afterwork's own table."""

from benchmarks.apps.durable_floor import AfterworkTable, make_app

app = make_app(AfterworkTable())
