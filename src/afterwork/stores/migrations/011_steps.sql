-- A task's steps (afterwork.step): one row per step a task reached, by its place in the task
-- (seq, from 0). A re-run of the task returns a finished step's recorded result instead of
-- calling it again. state: 'started' (an at-most-once step, written before it runs),
-- 'finished' (result: its value through the codec, as JSON text) or 'failed' (error: why;
-- it runs again on the next attempt, unless it is at most once). runs: how many calls were
-- recorded. Rows go with their task (purge).
CREATE TABLE afterwork_steps (
    task_id     TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    name        TEXT NOT NULL,
    state       TEXT NOT NULL,
    once        INTEGER NOT NULL DEFAULT 0,
    attempt     INTEGER NOT NULL,
    runs        INTEGER NOT NULL DEFAULT 1,
    started_at  REAL NOT NULL,
    finished_at REAL,
    result      TEXT,
    error       TEXT,
    PRIMARY KEY (task_id, seq)
);
