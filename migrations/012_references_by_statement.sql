-- An event's two foreign keys, to its webhook and to its content type, checked every
-- event on its own: one query of the webhook and one of the content type per row, made
-- at the end of the statement. A publish writes up to hundreds of events of a few
-- webhooks in one statement, so nearly all of those queries read a row just read. In a
-- loop of enqueue statements of 64 events of 1 KB (alternated with a schema without the
-- change), the keys cost PostgreSQL 15 about a fifth of the statement's CPU; this
-- trigger, which checks each webhook and content type named once per statement, gave
-- back 7-9 µs of about 50 per event, and on PGlite 14-15 of about 100.
--
-- It does what the keys did:
-- - an insert locks each webhook and content type it names, as a key check does (for key
--   share), so that a delete of one waits for the insert's commit, and fails as the key
--   would (23503, under the key's name) when one is missing or was deleted meanwhile;
-- - a deleted webhook takes its events with it (the key's on delete cascade), once per
--   statement, and they take their payloads, queue rows and attempts (migration 009);
-- - a content type that events still name cannot be deleted (the key's no action);
-- - an event cannot be moved to another webhook or content type, and neither can change
--   its id, which no statement of ours does.
alter table hook_events drop constraint hook_events_webhook_id_fkey;
alter table hook_events drop constraint hook_events_content_type_id_fkey;

create function oms_hook_events_inserted() returns trigger language plpgsql as $$
declare
  hook integer;
  model integer;
begin
  -- A locking clause keeps each exists from being turned into a join: it runs once per
  -- distinct id, and a row deleted by a transaction that committed while this one waited
  -- for its lock is not found.
  select
    (select i.webhook_id from (select distinct webhook_id from inserted) i
      where not exists (select from webhooks w where w.id = i.webhook_id for key share)
      limit 1),
    (select i.content_type_id
      from (select distinct content_type_id from inserted where content_type_id is not null) i
      where not exists (select from content_types c where c.id = i.content_type_id for key share)
      limit 1)
  into hook, model;
  if hook is not null then
    raise exception 'insert or update on table "hook_events" violates foreign key constraint "hook_events_webhook_id_fkey"'
      using errcode = 'foreign_key_violation', constraint = 'hook_events_webhook_id_fkey',
            table = 'hook_events',
            detail = format('Key (webhook_id)=(%s) is not present in table "webhooks".', hook);
  end if;
  if model is not null then
    raise exception 'insert or update on table "hook_events" violates foreign key constraint "hook_events_content_type_id_fkey"'
      using errcode = 'foreign_key_violation', constraint = 'hook_events_content_type_id_fkey',
            table = 'hook_events',
            detail = format('Key (content_type_id)=(%s) is not present in table "content_types".', model);
  end if;
  return null;
end
$$;

create trigger hook_events_inserted after insert on hook_events
  referencing new table as inserted
  for each statement execute function oms_hook_events_inserted();

create function oms_webhooks_deleted() returns trigger language plpgsql as $$
begin
  delete from hook_events e using deleted d where e.webhook_id = d.id;
  return null;
end
$$;

create trigger webhooks_deleted after delete on webhooks
  referencing old table as deleted
  for each statement execute function oms_webhooks_deleted();

create function oms_content_types_deleted() returns trigger language plpgsql as $$
declare
  model integer;
begin
  select d.id into model from deleted d
    where exists (select from hook_events e where e.content_type_id = d.id)
    limit 1;
  if found then
    raise exception 'update or delete on table "content_types" violates foreign key constraint "hook_events_content_type_id_fkey" on table "hook_events"'
      using errcode = 'foreign_key_violation', constraint = 'hook_events_content_type_id_fkey',
            table = 'content_types',
            detail = format('Key (id)=(%s) is still referenced from table "hook_events".', model);
  end if;
  return null;
end
$$;

create trigger content_types_deleted after delete on content_types
  referencing old table as deleted
  for each statement execute function oms_content_types_deleted();

create function oms_reference_fixed() returns trigger language plpgsql as $$
begin
  raise exception '%.% cannot change', tg_table_name, tg_argv[0]
    using errcode = 'foreign_key_violation', table = tg_table_name;
end
$$;

create trigger hook_events_references_fixed before update of webhook_id, content_type_id
  on hook_events for each row
  when (old.webhook_id is distinct from new.webhook_id
        or old.content_type_id is distinct from new.content_type_id)
  execute function oms_reference_fixed('webhook_id or content_type_id');

create trigger webhooks_id_fixed before update of id on webhooks for each row
  when (old.id is distinct from new.id)
  execute function oms_reference_fixed('id');

create trigger content_types_id_fixed before update of id on content_types for each row
  when (old.id is distinct from new.id)
  execute function oms_reference_fixed('id');
