-- Only an attempt writes an event's status, and `delivered` with it, true for a 2xx
-- alone; an event with any other status is an undelivered one, attempted, and a filter
-- on such a status reads the indexes of those events (src/store/hook-events.ts,
-- attemptedUndelivered). Without the status in them, each entry sent PostgreSQL to the
-- table: with 100,000 of a webhook's 1,000,000 events answered 500,
-- `?webhook=&response_http_status=500` counted in 110 ms, reading every page of the
-- table; with it, in 8, off the index alone.
--
-- Entries of these indexes are written only for events attempted and not delivered;
-- a delivered event has none. In the index by id the status fits in the padding the
-- entry already had (an 8-byte id and a 4-byte webhook id), so it costs no space.
drop index hook_events_undelivered_idx;
create index hook_events_undelivered_idx on hook_events (id)
  include (webhook_id, response_http_status) where not delivered and retry_count > 0;
drop index hook_events_undelivered_type_idx;
create index hook_events_undelivered_type_idx on hook_events (event_type, webhook_id, id)
  include (response_http_status) where not delivered and retry_count > 0;
