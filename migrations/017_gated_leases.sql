-- A claim through the gate counts the live leases of each webhook with max_concurrency
-- or ordered. It counted them over the webhook's whole range of the (webhook_id,
-- run_at) index, so with a backlog every claim read all of it: a webhook with
-- max_concurrency 50 and 200,000 events queued drained at 1,150-1,200 events/s, with
-- PostgreSQL spending 334-591 µs per event, against 9,300-10,200/s and 36-41 µs without
-- the limit (`bench/backlog-probe.ts` with HOOK_CONFIG, two runs each, interleaved).
--
-- `gated` marks a lease of such a webhook, taken through the gate or by a manual
-- resend, and this index holds those rows alone, so the count reads the webhook's
-- leases, not its backlog. It stays true on a lease that ran out or was handed back
-- until the row is leased or rescheduled again; the count checks the lease itself. The
-- flag is written only for those webhooks' rows: every other lease changes no indexed
-- column and stays a heap-only update (migration 005), since a column set to the value
-- it already holds does not count as changed.
alter table hook_event_queue add column gated boolean not null default false;
create index hook_event_queue_gated_idx on hook_event_queue (webhook_id) where gated;
