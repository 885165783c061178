-- Claiming a queue row writes only locked_by and locked_until. With no index on those
-- columns, and free room on each page, PostgreSQL can make that a heap-only (HOT)
-- update that touches no index at all. The two indexes on lease columns made every
-- claim and release rewrite every index of the table, which bloated them during a
-- drain and slowed each claim as the backlog grew. Lease lookups by worker (rescue)
-- and by webhook (max_concurrency) run over the small queue table or the
-- (webhook_id, run_at) index instead.
drop index if exists hook_event_queue_webhook_leased_idx;
drop index if exists hook_event_queue_locked_by_idx;
alter table hook_event_queue set (fillfactor = 70);
