-- An event's modified_date is never before its created_date: both are the publish's time
-- at first (src/queue/enqueue.ts), and an attempt's time, which comes from the worker's
-- clock (src/queue/record.ts), is raised to the created_date when that clock is behind
-- the API's. So the oldest created_date of a page's webhooks bounds their modified dates
-- too, and a page sorted by modified_date, oldest first, reads the index of those dates
-- (migration 025) from there (src/store/hook-events.ts, createdSpan), not past every
-- event of the other webhooks modified before: with 1,000,000 events of one webhook and
-- then 200,000 of another, the second's page took 202 ms on PostgreSQL.
--
-- The constraint keeps the bound true for rows written by hand as well. Rows that break
-- it already (an attempt recorded by a worker whose clock was behind) take their
-- created_date as their modified_date.
update hook_events set modified_date = created_date where modified_date < created_date;
alter table hook_events add constraint hook_events_modified_after_created
  check (modified_date >= created_date);
