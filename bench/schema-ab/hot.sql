-- An experiment, not a schema to run: with no index predicate on delivered or
-- retry_count, and room left on each page, recording a delivery can update the event's
-- row in place (HOT) instead of adding an entry to each of its indexes. The lists that
-- read these partial indexes would need them elsewhere first.
drop index hook_events_pending_idx;
drop index hook_events_undelivered_idx;
drop index hook_events_undelivered_type_idx;
alter table hook_events set (fillfactor = 50);
