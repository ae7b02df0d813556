-- A task added with a de-duplication key while another with that key is queued or running is
-- not stored; its id (already given to the caller: add_task returns before the store is
-- asked) becomes an alias of the live task, so that a page holding it follows that task.
CREATE TABLE afterwork_task_aliases (
    id TEXT PRIMARY KEY,
    task_id TEXT NOT NULL
);
CREATE INDEX afterwork_task_aliases_task ON afterwork_task_aliases (task_id);
