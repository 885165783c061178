-- Workers keep the events they claimed, with their webhook's settings, in memory ahead
-- of their slots. When a webhook changes (its target, secret or headers; paused) or is
-- deleted, the database itself tells every worker, whichever process or statement made
-- the change, so that they give back what they hold of it: claimed afresh, those events
-- go out with the new settings, or wait while the webhook is paused.
create function oms_webhook_changed() returns trigger language plpgsql as $$
begin
  perform pg_notify('oms_hooks_webhook_changed', old.id::text);
  return null;
end
$$;

create trigger webhooks_changed after update or delete on webhooks
  for each row execute function oms_webhook_changed();
