-- afterwork's task table. Migrations are written in what SQLite and PostgreSQL share; REAL
-- becomes DOUBLE PRECISION on PostgreSQL (PostgresStore.dialect_sql). Times: Unix epoch seconds.
CREATE TABLE afterwork_tasks (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    payload         TEXT NOT NULL,
    state           TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    max_attempts    INTEGER NOT NULL DEFAULT 1,
    timeout_seconds REAL,
    batch_id        TEXT,
    seq             INTEGER NOT NULL DEFAULT 0,
    waiting_on      TEXT,
    lease_owner     TEXT,
    lease_until     REAL,
    run_at          REAL NOT NULL,
    created_at      REAL NOT NULL,
    started_at      REAL,
    finished_at     REAL,
    last_error      TEXT
);
CREATE INDEX afterwork_tasks_ready ON afterwork_tasks (run_at)
    WHERE state = 'queued' AND waiting_on IS NULL;
CREATE INDEX afterwork_tasks_leased ON afterwork_tasks (lease_until)
    WHERE state IN ('leased', 'running');
CREATE INDEX afterwork_tasks_waiting ON afterwork_tasks (waiting_on)
    WHERE waiting_on IS NOT NULL;
CREATE INDEX afterwork_tasks_created ON afterwork_tasks (created_at);
