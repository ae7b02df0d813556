-- Named queues with priorities, and de-duplication keys.
ALTER TABLE afterwork_tasks ADD COLUMN queue TEXT NOT NULL DEFAULT 'default';
ALTER TABLE afterwork_tasks ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;
ALTER TABLE afterwork_tasks ADD COLUMN dedup_key TEXT;
DROP INDEX afterwork_tasks_ready;
CREATE INDEX afterwork_tasks_ready ON afterwork_tasks (priority DESC, run_at)
    WHERE state = 'queued' AND waiting_on IS NULL;
CREATE INDEX afterwork_tasks_queue_active ON afterwork_tasks (queue)
    WHERE state IN ('leased', 'running');
CREATE INDEX afterwork_tasks_name_started ON afterwork_tasks (name, started_at);
-- While a task with a key is queued or running, no second one with that key exists.
CREATE UNIQUE INDEX afterwork_tasks_dedup ON afterwork_tasks (dedup_key)
    WHERE dedup_key IS NOT NULL AND state IN ('queued', 'leased', 'running');
