-- Each attempt that did not succeed, as JSON lines: attempt, start, end, outcome, error.
ALTER TABLE afterwork_tasks ADD COLUMN history TEXT;
