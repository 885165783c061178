-- B as before migration 012: the two foreign keys of hook_events back, checked per row,
-- in place of the trigger that checks each webhook and content type once per statement.
drop trigger hook_events_inserted on hook_events;
alter table hook_events add constraint hook_events_webhook_id_fkey
  foreign key (webhook_id) references webhooks (id) on delete cascade;
alter table hook_events add constraint hook_events_content_type_id_fkey
  foreign key (content_type_id) references content_types (id);
