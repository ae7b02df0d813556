-- Each runner's host, process, queues (a JSON list; NULL: every queue) and concurrency, for
-- `afterwork check` and the dashboard on deployments of many hosts.
ALTER TABLE afterwork_runners ADD COLUMN host TEXT NOT NULL DEFAULT '';
ALTER TABLE afterwork_runners ADD COLUMN pid INTEGER NOT NULL DEFAULT 0;
ALTER TABLE afterwork_runners ADD COLUMN queues TEXT;
ALTER TABLE afterwork_runners ADD COLUMN concurrency INTEGER NOT NULL DEFAULT 0;
