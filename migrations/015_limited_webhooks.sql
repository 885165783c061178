-- Every claim asks whether a webhook with a shared limit (max_concurrency, rate_limit or
-- ordered) has an event due, and the claims through the gate lock those webhooks. Both
-- read every active webhook to find the few with a limit. This index holds those few.
-- Its predicate is claim.ts's LIMITED, written on the bare columns.
create index webhooks_limited_idx on webhooks (id)
  where is_active and coalesce(jsonb_typeof(config->'max_concurrency') = 'number'
    or jsonb_typeof(config->'rate_limit') = 'number' or config->'ordered' = 'true'::jsonb, false);
