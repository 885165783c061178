-- An admin's count of a `created_date` range alone sums the blocks of ids of migration
-- 022. Any other count of a range counted every event in it: a user's (each event looked
-- up for its webhook), one of a webhook, an event type or a content type. With
-- 1,110,000 events one second apart, 1,000,000 of them one webhook's, a user's count of
-- the newer half took 203-397 ms on PostgreSQL, the webhook's 162-270, and an event
-- type's of the older half 144-287 (a scratch loop over countHookEvents, 7 each). Every
-- list answer carries its count, and a user of the service is most often a user, not
-- an admin, looking at the last day of their own webhook's deliveries.
--
-- This table splits the totals of hook_event_counts (migration 018) by the same blocks
-- of 4,096 ids as hook_event_blocks: per webhook, event type, content type and block,
-- how many events. A block whose dates lie within a range (which hook_event_blocks says)
-- counts as the sum of its rows of the keys asked for; a block at the range's edge has
-- its events read by id, as for an admin's count. The dates stay in hook_event_blocks
-- alone: they are the block's, whatever its keys.
--
-- Written by the same statement as the totals, so the trigger of migration 018/019 reads
-- each statement's rows once for both; folded by maintenance with the blocks, one row
-- per key and block (src/maintenance/counts.ts). A block's keys are the webhooks that
-- had events there, so the table holds at most one row per event and, for a webhook of
-- many events, one per 4,096 of them.
create table hook_event_key_blocks (
  webhook_id integer not null,
  event_type text not null,
  content_type_id integer,
  block bigint not null,
  n bigint not null
);
create index hook_event_key_blocks_idx
  on hook_event_key_blocks (webhook_id, block) include (event_type, content_type_id, n);

create or replace function oms_hook_events_counted() returns trigger language plpgsql as $$
begin
  with keyed as (
    select webhook_id, event_type, content_type_id, id >> 12 as block,
           case when tg_op = 'INSERT' then count(*) else -count(*) end as n,
           case when tg_op = 'INSERT' then min(id) end as min_id,
           case when tg_op = 'INSERT' then max(id) end as max_id
    from changed group by webhook_id, event_type, content_type_id, id >> 12
  ), blocks as (
    insert into hook_event_key_blocks (webhook_id, event_type, content_type_id, block, n)
      select webhook_id, event_type, content_type_id, block, n from keyed
  )
  insert into hook_event_counts (webhook_id, event_type, content_type_id, n, min_id, max_id)
    select webhook_id, event_type, content_type_id, sum(n), min(min_id), max(max_id)
    from keyed group by webhook_id, event_type, content_type_id;
  return null;
end
$$;

-- The events already stored, once. The lock holds off inserts and deletes until this
-- transaction commits, so none falls between this read and the trigger above.
lock table hook_events in share mode;
insert into hook_event_key_blocks (webhook_id, event_type, content_type_id, block, n)
  select webhook_id, event_type, content_type_id, id >> 12, count(*) from hook_events
  group by webhook_id, event_type, content_type_id, id >> 12;
