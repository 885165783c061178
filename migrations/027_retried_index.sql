-- An event's retry_count is null until its first attempt and counts its attempts after
-- (src/queue/record.ts): most events are delivered at the first, and keep 1. Those
-- attempted again are few, and this index holds them in the order of their count, with
-- their webhook, so that a page sorted by retry_count reads them off it in order, the
-- others (1, then none) by id (src/store/hook-events.ts, idsByRetries). Without it,
-- such a page read and sorted every match: with 1,200,000 events, 249-335 ms on
-- PostgreSQL for the first page of every event or of a webhook's 1,020,000.
--
-- An attempt that leaves retry_count at 1 writes no entry; each later one writes one
-- (the row's new version has an entry in every index anyway, as `delivered` or
-- `retry_count` changes with each attempt, which partial indexes name).
create index hook_events_retried_idx on hook_events (retry_count, id) include (webhook_id)
  where retry_count <> 1;
