-- Maintenance: worker liveness for lease rescue, and what retention and auto-disable need.

-- Each running worker process refreshes its row every heartbeat. The maintenance role
-- releases the leases of a worker not seen for a few heartbeats, so a dead worker's
-- events are claimed again within seconds instead of waiting out LEASE_MS.
-- `last_seen` is the database's clock, so machines with skewed clocks agree on it.
create table workers (
  id text primary key,
  started_at timestamptz not null default now(),
  last_seen timestamptz not null default now()
);
create index workers_last_seen_idx on workers (last_seen);

-- Lease rescue looks rows up by their owner.
create index hook_event_queue_locked_by_idx on hook_event_queue (locked_by) where locked_by is not null;
