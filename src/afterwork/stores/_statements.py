"""The SQL the stores share, in what SQLite and PostgreSQL have in common (`?` marks become
`%s` for psycopg). Every update of a leased task names its owner: the fencing.

Lease times (`lease_until`) are on the store's clock. `LEASE_NOW` stands for it here; each
dialect puts in its own expression (`SqlStore.lease_now_sql`): on SQLite a function the store
registers on its connections (the machine's boot clock, see `_clock.py`), on PostgreSQL the
server's `clock_timestamp()`. No runner's wall clock is ever compared with a lease.

Names: the statements that move a task to a state are MARK_<STATE>_SQL."""

from __future__ import annotations

COLUMNS = (
    "id", "name", "payload", "state", "attempts", "max_attempts", "timeout_seconds",
    "batch_id", "seq", "waiting_on", "lease_owner", "lease_until", "run_at", "created_at",
    "started_at", "finished_at", "last_error", "history", "meta", "queue", "priority", "dedup_key",
    "rate_key", "tick_key",
)
COLUMN_LIST = ", ".join(COLUMNS)
TASKS_TABLE = "afterwork_tasks"
OUTPUTS_TABLE = "afterwork_task_outputs"
# Reads that show a task whole: its row and, from the outputs table, its result and progress.
READ_COLUMNS = (*COLUMNS, "result", "progress")
READ_LIST = f"{COLUMN_LIST}, o.result, o.progress"
READ_FROM = f"{TASKS_TABLE} LEFT JOIN {OUTPUTS_TABLE} o ON o.task_id = {TASKS_TABLE}.id"
_LEASED = "state IN ('leased', 'running')"

LEASE_NOW = "LEASE_NOW()"  # a placeholder: SqlStore._sql puts in the dialect's expression
_NOTE = "history = COALESCE(history, '') || ?"
INSERT = f"INSERT INTO {TASKS_TABLE} ({COLUMN_LIST}) VALUES ({', '.join('?' for _ in COLUMNS)})"
INSERT_IF_ABSENT = f"{INSERT} ON CONFLICT DO NOTHING"
# Rows handed to this process's runner with their request: the lease starts on the store's clock.
_LEASE_MARK = len(COLUMNS) - 1 - COLUMNS.index("lease_until")
INSERT_LEASED = (f"INSERT INTO {TASKS_TABLE} ({COLUMN_LIST}) VALUES "
                 f"({', '.join('?' for _ in COLUMNS[:-_LEASE_MARK - 1])}, {LEASE_NOW} + ?, "
                 f"{', '.join('?' for _ in range(_LEASE_MARK))})")
MARK_STARTED_SQL = (f"UPDATE {TASKS_TABLE} SET state = 'running', attempts = attempts + 1, "
                    f"started_at = ?, {_NOTE} WHERE id = ? AND lease_owner = ? AND {_LEASED}")
MARK_SUCCEEDED_SQL = (f"UPDATE {TASKS_TABLE} SET state = 'succeeded', finished_at = ?, "
                      f"lease_owner = NULL, lease_until = NULL, last_error = NULL "
                      f"WHERE id = ? AND lease_owner = ? AND {_LEASED}")
# A task that started and succeeded within one group of writes: one statement, not two.
MARK_STARTED_AND_SUCCEEDED_SQL = (
    f"UPDATE {TASKS_TABLE} SET state = 'succeeded', attempts = attempts + 1, started_at = ?, "
    f"finished_at = ?, lease_owner = NULL, lease_until = NULL, last_error = NULL, {_NOTE} "
    f"WHERE id = ? AND lease_owner = ? AND {_LEASED}"
)
# Only a success that was applied (fenced above) unblocks the next task of the chain.
UNBLOCK = (f"UPDATE {TASKS_TABLE} SET waiting_on = NULL WHERE waiting_on = ? AND EXISTS "
           f"(SELECT 1 FROM {TASKS_TABLE} p WHERE p.id = ? AND p.state = 'succeeded')")
MARK_FAILED_SQL = (f"UPDATE {TASKS_TABLE} SET state = 'failed', finished_at = ?, last_error = ?, "
                   f"lease_owner = NULL, lease_until = NULL, {_NOTE} "
                   f"WHERE id = ? AND lease_owner = ? AND {_LEASED}")
CANCEL_CHAIN = (
    f"WITH RECURSIVE chain(id) AS (SELECT id FROM {TASKS_TABLE} WHERE waiting_on = ? "
    f"UNION ALL SELECT t.id FROM {TASKS_TABLE} t JOIN chain c ON t.waiting_on = c.id) "
    f"UPDATE {TASKS_TABLE} SET state = 'cancelled', finished_at = ?, last_error = ?, lease_owner = NULL, "
    f"lease_until = NULL WHERE id IN (SELECT id FROM chain) AND state IN ('queued', 'leased') "
    f"AND EXISTS (SELECT 1 FROM {TASKS_TABLE} p WHERE p.id = ? AND p.state = 'failed')"
)
MARK_RETRIED_SQL = (f"UPDATE {TASKS_TABLE} SET state = 'queued', run_at = ?, last_error = ?, "
                    f"lease_owner = NULL, lease_until = NULL, {_NOTE} "
                    f"WHERE id = ? AND lease_owner = ? AND {_LEASED}")
MARK_RELEASED_SQL = (f"UPDATE {TASKS_TABLE} SET state = 'queued', lease_owner = NULL, "
                     f"lease_until = NULL WHERE id = ? AND lease_owner = ? AND {_LEASED}")
EXPIRE = f"UPDATE {TASKS_TABLE} SET lease_until = 0 WHERE lease_owner = ? AND {_LEASED}"
HEARTBEAT = f"UPDATE {TASKS_TABLE} SET lease_until = {LEASE_NOW} + ? WHERE lease_owner = ? AND {_LEASED}"
# Ready: queued, due and not waiting on another task; or leased with its lease expired on the
# store's clock, and not to the claimer itself (a runner never takes back what it runs).
# Two conditions, each matching one partial index (`afterwork_tasks_ready`, `afterwork_tasks_active`):
# a claim selects from each and merges, where one OR of both made either store scan the whole
# table (finished rows included) and sort it, on every claim.
READY_QUEUED = "state = 'queued' AND waiting_on IS NULL AND run_at <= ?"  # parameter: now
READY_EXPIRED = (f"state IN ('leased', 'running') AND waiting_on IS NULL "  # parameter: the owner
                 f"AND lease_until < {LEASE_NOW} AND lease_owner <> ?")
READY_ORDER = "ORDER BY priority DESC, run_at"
# Is any task ready for a claim (a queued one due, its queue not paused)? Parameter: now.
ANY_READY = (f"SELECT 1 FROM {TASKS_TABLE} WHERE {READY_QUEUED} "
             "AND queue NOT IN (SELECT queue FROM afterwork_queue_pauses) LIMIT 1")
ACTIVE_IN_QUEUE = (f"SELECT COUNT(*) FROM {TASKS_TABLE} WHERE queue = ? AND {_LEASED} "
                   f"AND lease_until >= {LEASE_NOW}")
RECENT_STARTS = (f"SELECT COUNT(*) FROM {TASKS_TABLE} WHERE rate_key = ? AND "
                 f"(started_at >= ? OR (state = 'leased' AND lease_until >= {LEASE_NOW}))")
GET = f"SELECT {READ_LIST} FROM {READ_FROM} WHERE id = ?"
WITH_KEY = (f"SELECT {COLUMN_LIST} FROM {TASKS_TABLE} WHERE dedup_key = ? "
            f"AND state IN ('queued', 'leased', 'running')")
# A keyed row skipped for a live duplicate: its id names that task from now on. Parameters:
# the skipped row's id, its key, its id again (the row itself, if it was stored, is no alias).
ALIAS_IF_SKIPPED = ("INSERT INTO afterwork_task_aliases (id, task_id) "
                    f"SELECT ?, id FROM {TASKS_TABLE} WHERE dedup_key = ? AND id <> ? "
                    "AND state IN ('queued', 'leased', 'running') ON CONFLICT DO NOTHING")
GET_BY_ALIAS = (f"SELECT {READ_LIST} FROM {READ_FROM} WHERE id = "
                "(SELECT task_id FROM afterwork_task_aliases WHERE id = ?)")
PURGE_ALIASES = (f"DELETE FROM afterwork_task_aliases WHERE NOT EXISTS "
                 f"(SELECT 1 FROM {TASKS_TABLE} t WHERE t.id = afterwork_task_aliases.task_id)")
PURGE_OUTPUTS = (f"DELETE FROM {OUTPUTS_TABLE} WHERE NOT EXISTS "
                 f"(SELECT 1 FROM {TASKS_TABLE} t WHERE t.id = {OUTPUTS_TABLE}.task_id)")
# What a success returned, once MARK_*SUCCEEDED_SQL applied it (fenced: this very finish).
# Parameters: task id, result JSON, task id, finished_at.
SAVE_RESULT = (f"INSERT INTO {OUTPUTS_TABLE} (task_id, result) SELECT ?, ? WHERE EXISTS "
               f"(SELECT 1 FROM {TASKS_TABLE} WHERE id = ? AND state = 'succeeded' AND finished_at = ?) "
               "ON CONFLICT (task_id) DO UPDATE SET result = excluded.result")
# A running task's latest progress, while its runner holds the lease. Parameters: task id,
# progress JSON, task id, owner.
SAVE_PROGRESS = (f"INSERT INTO {OUTPUTS_TABLE} (task_id, progress) SELECT ?, ? WHERE EXISTS "
                 f"(SELECT 1 FROM {TASKS_TABLE} WHERE id = ? AND lease_owner = ? AND {_LEASED}) "
                 "ON CONFLICT (task_id) DO UPDATE SET progress = excluded.progress")
# Results of tasks finished before a time (Afterwork's keep_results_seconds); progress stays.
FORGET_RESULTS = (f"UPDATE {OUTPUTS_TABLE} SET result = NULL WHERE result IS NOT NULL AND EXISTS "
                  f"(SELECT 1 FROM {TASKS_TABLE} t WHERE t.id = {OUTPUTS_TABLE}.task_id "
                  "AND t.finished_at < ? AND t.state IN ('succeeded', 'failed', 'cancelled'))")
COUNT_PENDING = (f"SELECT COUNT(*) FROM {TASKS_TABLE} WHERE {_LEASED} OR "
                 f"(state = 'queued' AND (run_at <= ? OR waiting_on IS NOT NULL))")
REQUEUE = (f"UPDATE {TASKS_TABLE} SET state = 'queued', run_at = ?, attempts = 0, finished_at = NULL, "
           f"lease_owner = NULL, lease_until = NULL WHERE id = ? AND state IN ('failed', 'cancelled')")
# The tasks after a requeued one that were cancelled because of it come back with it.
REQUEUE_CHAIN = (
    f"WITH RECURSIVE chain(id) AS (SELECT id FROM {TASKS_TABLE} WHERE waiting_on = ? "
    f"UNION ALL SELECT t.id FROM {TASKS_TABLE} t JOIN chain c ON t.waiting_on = c.id) "
    f"UPDATE {TASKS_TABLE} SET state = 'queued', finished_at = NULL, last_error = NULL "
    f"WHERE id IN (SELECT id FROM chain) AND state = 'cancelled'"
)
CANCEL = (f"UPDATE {TASKS_TABLE} SET state = 'cancelled', finished_at = ?, last_error = ?, "
          f"lease_owner = NULL, lease_until = NULL WHERE id = ? AND state IN ('queued', 'leased')")
CANCEL_AFTER = CANCEL_CHAIN.replace("p.state = 'failed'", "p.state = 'cancelled'")
RUNNER_SEEN = ("INSERT INTO afterwork_runners (owner, kind, started_at, heartbeat_at, host, pid, queues, "
               "concurrency) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
               "ON CONFLICT (owner) DO UPDATE SET heartbeat_at = excluded.heartbeat_at")
RUNNER_GONE = "DELETE FROM afterwork_runners WHERE owner = ?"
RUNNERS = ("SELECT owner, kind, started_at, heartbeat_at, host, pid, queues, concurrency, "
           f"(SELECT COUNT(*) FROM {TASKS_TABLE} t WHERE t.lease_owner = r.owner AND t.{_LEASED}) "
           "FROM afterwork_runners r ORDER BY started_at")
# Paused queues: claims skip them (NOT_PAUSED is a term of every claim's WHERE).
PAUSED_QUEUES = "SELECT queue, paused_at FROM afterwork_queue_pauses ORDER BY queue"
PAUSE_QUEUE = "INSERT INTO afterwork_queue_pauses (queue, paused_at) VALUES (?, ?) ON CONFLICT DO NOTHING"
RESUME_QUEUE = "DELETE FROM afterwork_queue_pauses WHERE queue = ?"
NOT_PAUSED = " AND queue NOT IN (SELECT queue FROM afterwork_queue_pauses)"
# Per queue: waiting (queued, not final), the oldest due task's run time, and what runs now.
QUEUE_NOW = (f"SELECT queue, SUM(CASE WHEN state = 'queued' THEN 1 ELSE 0 END), "
             "MIN(CASE WHEN state = 'queued' AND waiting_on IS NULL AND run_at <= ? THEN run_at END), "
             f"SUM(CASE WHEN {_LEASED} THEN 1 ELSE 0 END) FROM {TASKS_TABLE} "
             "WHERE state IN ('queued', 'leased', 'running') GROUP BY queue")
# Finished tasks since a time, newest first, for per-name figures (durations, waits).
FINISHED_TIMES = (f"SELECT name, state, run_at, started_at, finished_at FROM {TASKS_TABLE} "
                  "WHERE finished_at >= ? AND state IN ('succeeded', 'failed') "
                  "ORDER BY finished_at DESC LIMIT ?")
# Per queue: succeeded and failed since a time.
QUEUE_FINISHED = (f"SELECT queue, SUM(CASE WHEN state = 'succeeded' THEN 1 ELSE 0 END), "
                  f"SUM(CASE WHEN state = 'failed' THEN 1 ELSE 0 END) FROM {TASKS_TABLE} "
                  "WHERE finished_at >= ? AND state IN ('succeeded', 'failed') GROUP BY queue")
_PURGEABLE = (f"finished_at < ? AND state IN ('succeeded', 'failed', 'cancelled') "
              f"AND NOT EXISTS (SELECT 1 FROM {TASKS_TABLE} n WHERE n.waiting_on = {TASKS_TABLE}.id)")
PURGE = f"DELETE FROM {TASKS_TABLE} WHERE id IN (SELECT id FROM {TASKS_TABLE} WHERE {_PURGEABLE} LIMIT ?)"
COUNT_PURGEABLE = f"SELECT COUNT(*) FROM {TASKS_TABLE} WHERE {_PURGEABLE}"
# An operator's delete of one task: queued or finished, never one a runner holds, nor one
# another task waits on (it would wait forever). Parameter: the task's id.
DELETE_TASK = (f"DELETE FROM {TASKS_TABLE} WHERE id = ? "
               "AND state IN ('queued', 'succeeded', 'failed', 'cancelled') "
               f"AND NOT EXISTS (SELECT 1 FROM {TASKS_TABLE} n WHERE n.waiting_on = {TASKS_TABLE}.id)")
OWNERS = f"SELECT DISTINCT lease_owner FROM {TASKS_TABLE} WHERE {_LEASED} AND lease_owner IS NOT NULL"
CANCELLED_BY_OPERATOR = "cancelled by an operator"


def chain_reason(task_id: str, what: str = "failed") -> str:
    """Why a task after `task_id` in the same response will not run."""
    return f"not run: task {task_id} before it in the same response {what}"
