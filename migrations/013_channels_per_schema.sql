-- NOTIFY channels are database-wide: two services on two schemas of one database (or
-- two test files on one server) heard each other's wake-ups and webhook changes, and a
-- worker would give back the events of its webhook 7 when another schema's webhook 7
-- changed. Each schema's channels now end in a tag of the schema's name (see wake.ts).
create or replace function oms_webhook_changed() returns trigger language plpgsql as $$
begin
  perform pg_notify('oms_hooks_webhook_changed_' || left(md5(tg_table_schema), 12), old.id::text);
  return null;
end
$$;
