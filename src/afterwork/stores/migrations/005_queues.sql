-- Named queues with priorities, de-duplication keys and rate limits.
ALTER TABLE afterwork_tasks ADD COLUMN queue TEXT NOT NULL DEFAULT 'default';
ALTER TABLE afterwork_tasks ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;
ALTER TABLE afterwork_tasks ADD COLUMN dedup_key TEXT;
-- Set only for tasks with a rate limit, so that other tasks pay for no index on it.
ALTER TABLE afterwork_tasks ADD COLUMN rate_key TEXT;
DROP INDEX afterwork_tasks_ready;
CREATE INDEX afterwork_tasks_ready ON afterwork_tasks (priority DESC, run_at)
    WHERE state = 'queued' AND waiting_on IS NULL;
-- One index for what is held: expired leases, and the tasks running in a limited queue.
DROP INDEX afterwork_tasks_leased;
CREATE INDEX afterwork_tasks_active ON afterwork_tasks (queue, lease_until)
    WHERE state IN ('leased', 'running');
CREATE INDEX afterwork_tasks_rate ON afterwork_tasks (rate_key, started_at)
    WHERE rate_key IS NOT NULL;
-- While a task with a key is queued or running, no second one with that key exists.
CREATE UNIQUE INDEX afterwork_tasks_dedup ON afterwork_tasks (dedup_key)
    WHERE dedup_key IS NOT NULL AND state IN ('queued', 'leased', 'running');
