-- Runners report here on every heartbeat: `afterwork check` and the dashboard read liveness.
CREATE TABLE afterwork_runners (
    owner        TEXT PRIMARY KEY,
    kind         TEXT NOT NULL,
    started_at   REAL NOT NULL,
    heartbeat_at REAL NOT NULL
);
