-- Queues an operator paused: no runner claims from them (every claim reads this table) until
-- they are resumed. A row per paused queue; resuming deletes it.
CREATE TABLE afterwork_queue_pauses (
    queue     TEXT PRIMARY KEY,
    paused_at REAL NOT NULL
);
