-- Every list answer carries an exact `count`, and counting the events a list matches
-- read every one of them: at 1,200,000 stored (a scratch loop over countHookEvents, 20
-- counts each, p50), the unfiltered list counted in 147 ms on PostgreSQL and 338 on
-- PGlite for an admin, 70 and 175 for a user, `?event_type=` 168 and 366, `?webhook=` of
-- a webhook's 1,000,000 59 and 146, `?webhook=&delivered=true` 150 and 240. The first
-- page has to answer in 100 ms.
--
-- This table keeps those totals as the events are written: each statement that inserts
-- events adds a row per webhook, event type and content type with how many it
-- inserted, each that deletes them a row with minus that, so that a count is the sum of
-- a few rows. Rows are only ever added, never updated: two publishes (or a publish and
-- a retention purge) of the same webhook do not wait for each other's lock, as they
-- would on one running total. Maintenance folds each key's rows into one, every
-- heartbeat (src/maintenance/counts.ts), so that a sum reads about as many rows as the
-- writes of a heartbeat made.
--
-- What the counts cover: an event's webhook, event type and content type never change
-- (migration 012 refuses the first and the last; nothing writes the second), so these
-- keys stay right whatever an attempt changes. Whether an event was delivered does
-- change, at every attempt, and is not kept here: `delivered=true` is the total less the
-- undelivered ones, which the partial index of migration 006 counts.
create table hook_event_counts (
  webhook_id integer not null,
  event_type text not null,
  content_type_id integer,
  n bigint not null
);
create index hook_event_counts_key_idx
  on hook_event_counts (webhook_id, event_type, content_type_id) include (n);

-- One function for both triggers: each names its statement's rows `changed`.
create function oms_hook_events_counted() returns trigger language plpgsql as $$
begin
  insert into hook_event_counts (webhook_id, event_type, content_type_id, n)
    select webhook_id, event_type, content_type_id,
           case when tg_op = 'INSERT' then count(*) else -count(*) end
    from changed group by webhook_id, event_type, content_type_id;
  return null;
end
$$;

create trigger hook_events_counted_in after insert on hook_events
  referencing new table as changed
  for each statement execute function oms_hook_events_counted();

create trigger hook_events_counted_out after delete on hook_events
  referencing old table as changed
  for each statement execute function oms_hook_events_counted();

-- The events already stored, counted once. The lock holds off inserts and deletes until
-- this transaction commits, so none falls between this count and the triggers above.
lock table hook_events in share mode;
insert into hook_event_counts (webhook_id, event_type, content_type_id, n)
  select webhook_id, event_type, content_type_id, count(*) from hook_events
  group by webhook_id, event_type, content_type_id;
