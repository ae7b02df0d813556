"""PostgreSQL behind a connection pooler (PgBouncer, or the pooler a managed offering puts in
front by default).

In transaction pooling each transaction may run on a different server connection, shared
with other clients, so nothing may outlive a transaction: no session settings, no `LISTEN`,
no server-side prepared statements (psycopg 3 prepares a statement after its fifth run, and
the next server connection does not know it). Two URL parameters, taken out before the URL
reaches psycopg, say how to work there:

- `afterwork_pooler=transaction`: timeouts are set per transaction, statements are never
  prepared, and runners poll for work (`poll_seconds`) instead of listening;
- `afterwork_listen_url=<a direct URL, percent-encoded>`: runners listen for wake-ups on
  this connection to PostgreSQL itself (a session of its own, outside the pooler).

Without them, a store opened through a transaction pooler refuses to start, saying so: at
start-up (two connections' server processes are compared) or, if that probe could not see
it, at the first statement the pooler lost.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .._errors import ConfigurationError

POOLER_PARAM = "afterwork_pooler"
LISTEN_PARAM = "afterwork_listen_url"
POOL_MODES = ("transaction", "session")
ADVICE = (f"add {POOLER_PARAM}=transaction to the store URL (afterwork then keeps no session "
          f"state and polls for work), and {LISTEN_PARAM}=<a direct PostgreSQL URL, "
          "percent-encoded> for prompt wake-ups; or point the URL at PostgreSQL itself, or "
          "set pool_mode = session in the pooler")
# SQLSTATEs of a prepared statement the server connection does not know, or already has:
# what psycopg's prepared statements meet behind a transaction pooler.
LOST_PREPARED = ("26000", "42P05")


@dataclass(frozen=True, slots=True)
class PoolerOptions:
    """How to connect: the URL for psycopg, and what the pooler in between allows."""

    dsn: str
    transaction_pooling: bool = False
    listen_dsn: str | None = None

    def connect_kwargs(self) -> dict[str, Any]:
        """psycopg's `connect` options: no prepared statements behind a transaction pooler."""
        return {"prepare_threshold": None} if self.transaction_pooling else {}


def pooler_options(url: str) -> PoolerOptions:
    """Split afterwork's own parameters off a PostgreSQL URL."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    ours = {k: v for k, v in query if k in (POOLER_PARAM, LISTEN_PARAM)}
    if not ours:
        return PoolerOptions(dsn=url)
    dsn = urlunsplit(parts._replace(query=urlencode(
        [(k, v) for k, v in query if k not in ours])))
    mode = ours.get(POOLER_PARAM, "session")
    if mode not in POOL_MODES:
        raise ConfigurationError(
            f"{POOLER_PARAM}={mode!r} in the store URL: use {POOLER_PARAM}=transaction "
            "(PgBouncer's pool_mode = transaction) or session; statement pooling cannot run "
            "afterwork's transactions of several statements, set pool_mode = transaction")
    listen = ours.get(LISTEN_PARAM) or None
    if listen is not None and not listen.startswith(("postgresql://", "postgres://")):
        raise ConfigurationError(
            f"{LISTEN_PARAM}={listen!r} in the store URL: give a postgresql://user@host/db "
            "URL of PostgreSQL itself (not of the pooler), percent-encoded")
    return PoolerOptions(dsn=dsn, transaction_pooling=mode == "transaction", listen_dsn=listen)


def server_changes_between_transactions(conn: Any, connect: Any) -> bool:
    """Does `conn` (autocommit) run its transactions on different server processes? A second
    connection holds a transaction open on the server process `conn` just released: a
    session (PostgreSQL itself, or session pooling) keeps its own process; transaction
    pooling hands `conn` another one."""
    before = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
    other = connect()
    try:
        with other.transaction():
            other.execute("SELECT pg_backend_pid()")
            after = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
    finally:
        other.close()
    return bool(before != after)
