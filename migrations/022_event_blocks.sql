-- A page by id of a `created_date` range keeps to the span of its events' ids
-- (src/store/hook-events.ts, dateRangeRead). Migration 021 had that span read off the
-- index by date, which costs a read of every entry of the range: up to 100,000 of them
-- it did, and past that it gave up, and the page read by id past every event created
-- after the range (the older half of 1,110,000 events: 58-117 ms on PostgreSQL and
-- 199-230 on PGlite, with an event type seconds).
--
-- This table summarises the events by block of 4,096 consecutive ids (`block` is the id
-- shifted right by 12 bits, its 4,096s rounded down, negative ids too): how many there
-- are and the oldest and newest `created_date` among them. The blocks whose dates meet
-- a range bound the ids of its events, to within the blocks at its edges, whatever the
-- range's size, in a read of one row per block (244 rows for a million events). The ids
-- follow the dates closely, so the blocks of a range are few beyond its own; a write
-- whose clock is off only widens the span of the ranges it falls in, and a page keeps to
-- the span of a superset of its events, so it is never wrong, only slower.
--
-- As with hook_event_counts (migration 018), each statement that inserts events adds a
-- row per block it wrote in, each that deletes them a row with minus their number and no
-- dates (a block's dates stay bounds once written: deletions only narrow what lies
-- within them), and maintenance folds each block's rows into one (src/maintenance/
-- counts.ts).
create table hook_event_blocks (
  block bigint not null,
  n bigint not null,
  oldest timestamptz,
  newest timestamptz
);

-- One function for both triggers: each names its statement's rows `changed`.
create function oms_hook_events_blocked() returns trigger language plpgsql as $$
begin
  insert into hook_event_blocks (block, n, oldest, newest)
    select id >> 12,
           case when tg_op = 'INSERT' then count(*) else -count(*) end,
           case when tg_op = 'INSERT' then min(created_date) end,
           case when tg_op = 'INSERT' then max(created_date) end
    from changed group by id >> 12;
  return null;
end
$$;

create trigger hook_events_blocked_in after insert on hook_events
  referencing new table as changed
  for each statement execute function oms_hook_events_blocked();

create trigger hook_events_blocked_out after delete on hook_events
  referencing old table as changed
  for each statement execute function oms_hook_events_blocked();

-- No statement of the service changes an event's date, but one by hand may (the tests
-- age events so that retention takes them): its block's dates then take the new one in.
-- The trigger of migration 012 that refuses a change of an event's webhook or content
-- type does this too, rather than a trigger of its own: a second trigger on the rows
-- updated cost every recorded attempt 2.4-3.3 µs of PostgreSQL's CPU per event, of 43-48
-- (`bench/schema-ab.ts record 100 30000`, two pairs; A/A pairs -1.6 and +1.4), though
-- no attempt changes any of its columns.
create function oms_hook_events_changed() returns trigger language plpgsql as $$
begin
  if old.webhook_id is distinct from new.webhook_id
     or old.content_type_id is distinct from new.content_type_id then
    raise exception 'hook_events.webhook_id or content_type_id cannot change'
      using errcode = 'foreign_key_violation', table = 'hook_events';
  end if;
  insert into hook_event_blocks (block, n, oldest, newest)
    values (new.id >> 12, 0, new.created_date, new.created_date);
  return new;
end
$$;

drop trigger hook_events_references_fixed on hook_events;
create trigger hook_events_changed before update of webhook_id, content_type_id, created_date
  on hook_events for each row
  when (old.webhook_id is distinct from new.webhook_id
        or old.content_type_id is distinct from new.content_type_id
        or old.created_date is distinct from new.created_date)
  execute function oms_hook_events_changed();

-- The events already stored, summarised once. The lock holds off inserts and deletes
-- until this transaction commits, so none falls between this read and the trigger above.
lock table hook_events in share mode;
insert into hook_event_blocks (block, n, oldest, newest)
  select id >> 12, count(*), min(created_date), max(created_date) from hook_events
  group by id >> 12;
