-- What a task returned and how far it has got, apart from the task row: a task that returns
-- None and reports no progress writes nothing here, so the runner's hot path stays as it was.
-- result: JSON {"value": ..., "public": bool} or {"unstorable": why, "public": bool}.
-- progress: JSON {"done", "total", "note", "attempt", "at"} (the latest report, throttled).
-- Rows go with their task (purge) or sooner (Afterwork's keep_results_seconds).
CREATE TABLE afterwork_task_outputs (
    task_id  TEXT PRIMARY KEY,
    result   TEXT,
    progress TEXT
);
