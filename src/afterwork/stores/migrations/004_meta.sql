-- Context carried with a task (a trace context, say), as a JSON object set at enqueue time.
ALTER TABLE afterwork_tasks ADD COLUMN meta TEXT;
