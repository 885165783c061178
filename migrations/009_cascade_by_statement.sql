-- The queue row and the attempt log of a hook event went with it through two foreign
-- keys. Each key checked its event on every row written: a lookup and a lock of the
-- event, made once per row through a query of its own, when both rows are only ever
-- written by a statement that has just inserted (the queue) or updated (the attempt
-- log) that same event, or, for a bulk resend, one that locks the events it reads
-- (requeue.ts). PostgreSQL spent about a tenth of its time on foreign-key checks while
-- publishing and delivering (bench/pg-perf.ts), half of them these two.
--
-- What the keys still did, deleting an event's queue row and attempts with it, a trigger
-- now does once per statement for all the events it deleted: a webhook deleted with a
-- million events makes two joins instead of two million single-row deletes.
alter table hook_event_queue drop constraint hook_event_queue_hook_event_id_fkey;
alter table delivery_attempts drop constraint delivery_attempts_hook_event_id_fkey;

create function oms_hook_events_deleted() returns trigger language plpgsql as $$
begin
  delete from hook_event_queue q using deleted d where q.hook_event_id = d.id;
  delete from delivery_attempts a using deleted d where a.hook_event_id = d.id;
  return null;
end
$$;

create trigger hook_events_deleted after delete on hook_events
  referencing old table as deleted
  for each statement execute function oms_hook_events_deleted();
