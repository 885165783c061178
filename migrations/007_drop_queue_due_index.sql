-- No query reads the queue by run_at alone since claims go per webhook, through
-- hook_event_queue_webhook_idx (webhook_id, run_at, hook_event_id); every publish and
-- every rescheduled retry still paid for an entry in this one.
drop index if exists hook_event_queue_due_idx;
