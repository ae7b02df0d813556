-- Which clock the lease times (lease_until) of this store were written on. SQLite uses the
-- machine's boot clock and writes its boot here: leases of another boot are expired at open.
-- PostgreSQL judges leases on the server's clock and does not use this table.
CREATE TABLE afterwork_clock (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
