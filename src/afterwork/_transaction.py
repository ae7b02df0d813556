"""Transactional enqueue: tasks written through the application's own database connection,
inside its transaction, so they commit or roll back with the application's data.

    with closing(sqlite3.connect("app.db")) as conn, conn:  # the store's own database file
        conn.execute("INSERT INTO orders ...")
        in_transaction(conn).add_task(send_receipt, order_id)
    # committed together; had the block raised, neither the order nor the task would exist
    # (sqlite3's own `with conn` only commits or rolls back; contextlib.closing closes it)

Works with a sqlite3 or psycopg 3 connection and a SQLAlchemy Session or Connection, on the
same database as the store (afterwork cannot check that: a different database would just get
the row in its own transaction). The tasks of one `in_transaction(...)` object run in order.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, ParamSpec

from . import _intake
from ._compat import current_batch
from ._enqueue import record_for
from ._errors import ConfigurationError, NotInstalledError
from ._handle import TaskHandle
from ._ids import new_id
from ._intake import Intake
from .stores import insert_task_statement

P = ParamSpec("P")
Execute = Callable[[str, tuple[Any, ...]], object]


def _adapter(connection: Any) -> tuple[Execute, bool]:
    """(execute(sql with ? marks, params), is PostgreSQL) for the connection's driver."""
    module = type(connection).__module__
    if hasattr(connection, "exec_driver_sql") or hasattr(connection, "get_bind"):
        conn = connection.connection() if hasattr(connection, "get_bind") else connection
        style = conn.dialect.paramstyle
        postgres = conn.dialect.name == "postgresql"

        def run_sqlalchemy(sql: str, params: tuple[Any, ...]) -> object:
            marked = sql.replace("?", "%s") if style in ("format", "pyformat") else sql
            return conn.exec_driver_sql(marked, params)

        return run_sqlalchemy, postgres
    if module.startswith("sqlite3"):
        return connection.execute, False
    if module.startswith("psycopg"):
        return (lambda sql, params: connection.execute(sql.replace("?", "%s"), params)), True
    raise ConfigurationError(
        f"in_transaction() takes a sqlite3 or psycopg connection, or a SQLAlchemy Session or "
        f"Connection; got {type(connection).__name__}"
    )


class InTransaction:
    """Tasks added here are INSERTed through the given connection, in its open transaction."""

    def __init__(self, intake: Intake, connection: Any) -> None:
        self.intake = intake
        self._execute, self._postgres = _adapter(connection)
        self._batch_id = new_id()
        self._previous: str | None = None
        self._seq = 0

    def add_task(self, func: Callable[P, Any], *args: P.args, **kwargs: P.kwargs) -> TaskHandle:
        planned = self.intake.planner.storable(self.intake.planner.plan(func, args, kwargs),
                                               "in_transaction().add_task")
        keyed = planned.key is not None
        if planned.key is not None and (existing := self.intake.active_with_key(planned.key)):
            return existing
        record = record_for(planned, time.time(), batch_id=self._batch_id, seq=self._seq,
                            waiting_on=None if keyed else self._previous)
        self.intake.open_storage()  # the schema exists before the app's transaction writes to it
        self._execute(*insert_task_statement(record, if_absent=keyed))
        if self._postgres:
            self._execute("SELECT pg_notify('afterwork', '')", ())  # delivered at commit
        if not keyed:
            self._previous = record.id
        self._seq += 1
        batch = current_batch.get()
        if batch is not None:
            batch.wake_after = True  # the app has likely committed once its response is sent
        return planned.handle

    defer = add_task


def in_transaction(connection: Any) -> InTransaction:
    """Add tasks inside the application's own transaction (see the module docstring)."""
    intake = _intake.find()
    if intake is None:
        raise NotInstalledError("in_transaction() needs afterwork installed: call Afterwork(app)")
    return InTransaction(intake, connection)
