-- A periodic task's tick: its task id is random like any other (an outsider must not compute
-- it from the schedule), and this key (name@tick) keeps each tick stored once across runners.
ALTER TABLE afterwork_tasks ADD COLUMN tick_key TEXT;
CREATE UNIQUE INDEX afterwork_tasks_tick ON afterwork_tasks (tick_key) WHERE tick_key IS NOT NULL;
