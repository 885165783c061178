-- Claims no longer look for webhooks with a shared limit through this index: the check
-- every claim makes and the gate's lookup now ask the webhooks the claim itself looks
-- at (those with events queued, found by a scan of the queue's index, and the worker's
-- own), since asking every limited webhook cost each claim 5-6 ms with 5,000 of them
-- idle (see claim.ts, claimedEvents). Nothing else reads it.
drop index if exists webhooks_limited_idx;
