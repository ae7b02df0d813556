-- afterwork's task table. Times are Unix epoch seconds (DOUBLE PRECISION).
CREATE TABLE afterwork_tasks (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    payload         TEXT NOT NULL,
    state           TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    max_attempts    INTEGER NOT NULL DEFAULT 1,
    timeout_seconds DOUBLE PRECISION,
    batch_id        TEXT,
    seq             INTEGER NOT NULL DEFAULT 0,
    waiting_on      TEXT,
    lease_owner     TEXT,
    lease_until     DOUBLE PRECISION,
    run_at          DOUBLE PRECISION NOT NULL,
    created_at      DOUBLE PRECISION NOT NULL,
    started_at      DOUBLE PRECISION,
    finished_at     DOUBLE PRECISION,
    last_error      TEXT
);
CREATE INDEX afterwork_tasks_ready ON afterwork_tasks (run_at)
    WHERE state = 'queued' AND waiting_on IS NULL;
CREATE INDEX afterwork_tasks_leased ON afterwork_tasks (lease_until)
    WHERE state IN ('leased', 'running');
CREATE INDEX afterwork_tasks_waiting ON afterwork_tasks (waiting_on)
    WHERE waiting_on IS NOT NULL;
CREATE INDEX afterwork_tasks_created ON afterwork_tasks (created_at);
