-- An admin's count of a `created_date` range with an event type or a content type and no
-- webhook sums the rows of hook_event_key_blocks (migration 023) of the blocks the range
-- holds whole, whatever their webhook. Its one index leads with the webhook, so that
-- count read the whole table: a few thousand rows for a handful of webhooks, but with
-- 2,000 webhooks whose events are interleaved a block holds a row for nearly every
-- webhook (542,000 rows for 1,110,000 events), and a day's count of a type took 59-84 ms
-- on PostgreSQL and 92-99 on PGlite, the newer half's 72-95 and 104-120, where the
-- index by date counts the day's 43,200 events in 12-25 and 21-28 (a scratch loop over
-- countHookEvents, medians of 5, and psql, 2026-12-06).
--
-- This index reads the rows of those blocks alone, block by block, and of the type
-- within each (for a content type without a type, every row of each block): the day in 4.1-6.1 ms on PostgreSQL and 6.8-7.1 on PGlite, the newer
-- half in 14.7-16.8 and 22-27. It costs an entry per row a publish statement writes
-- there, one per key and block: with one webhook, nothing seen in
-- `bench/schema-ab.ts enqueue` (4 events a statement: -4.2, +1.6 and +3.3 µs of
-- PostgreSQL's CPU per event of 149-186, A/A -0.8 and -0.9; 32 a statement +0.7 and 0.0
-- of 42-58); statements of 32 events to 32 of 2,000 webhooks, 300 in a loop in psql,
-- took 288-356 ms with it and 295-336 without.
create index hook_event_key_blocks_block_idx
  on hook_event_key_blocks (block, event_type) include (content_type_id, n);
