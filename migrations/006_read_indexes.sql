-- Counts that stay fast on a big table. Every list answer carries an exact `count`, and
-- at a million events counting by scanning the table took ~300 ms. These indexes let
-- the common filters be counted from the index alone (an index-only scan), which needs
-- every column the count touches in the index, webhook_id included (the count joins
-- webhooks for the owner).

-- ?webhook=N&delivered=false: only events not delivered yet are in it, so it stays
-- small while deliveries succeed.
create index hook_events_pending_idx on hook_events (webhook_id, id) where not delivered;

-- undelivered_webhooks, in id order and by event type.
drop index if exists hook_events_undelivered_idx;
create index hook_events_undelivered_idx on hook_events (id) include (webhook_id)
  where not delivered and retry_count > 0;
create index hook_events_undelivered_type_idx on hook_events (event_type, webhook_id, id)
  where not delivered and retry_count > 0;
