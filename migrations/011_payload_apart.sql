-- The payload moves to a table of its own. An event's row is written again on every
-- attempt (retry_count, delivered, the response), and PostgreSQL writes a whole new
-- version of the row each time: with the payload in it, the payload was copied into the
-- table and the WAL at every attempt, though it never changes. Apart, it is written
-- once, and the row an attempt rewrites holds only the event's state. The table that
-- filters and counts read is as small: at 1,000,000 events of the benchmark's seeding,
-- 160 MB instead of 488.
--
-- The payload is read where it is sent or shown: a claim joins it for the events it
-- leases, a list looks it up for the page it returns. It goes with its event the way the
-- queue row and the attempt log do (migration 009): the trigger deletes it with the
-- event, once per statement, with no foreign key to check on each insert.
--
-- Existing payloads are copied over, inside the migration's transaction (5.4 s for
-- 1,000,000 events on the development machine). Dropping the column does not rewrite
-- the table: old rows keep the space their payloads held until they are deleted or the
-- table is rewritten (VACUUM FULL); new rows are written without it.
create table hook_event_payloads (
  hook_event_id bigint primary key,
  request_payload json not null
);

insert into hook_event_payloads (hook_event_id, request_payload)
  select id, request_payload from hook_events;

alter table hook_events drop column request_payload;

create or replace function oms_hook_events_deleted() returns trigger language plpgsql as $$
begin
  delete from hook_event_queue q using deleted d where q.hook_event_id = d.id;
  delete from delivery_attempts a using deleted d where a.hook_event_id = d.id;
  delete from hook_event_payloads p using deleted d where p.hook_event_id = d.id;
  return null;
end
$$;
