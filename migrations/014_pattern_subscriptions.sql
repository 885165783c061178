-- Emit publishes to every active webhook whose subscription matches the event type. It
-- read every active webhook and matched in Node, so each emit cost time in proportion to
-- all the webhooks stored: with 2,000 webhooks of other types beside 5 matching ones, 84
-- emits/s against 2,040 with the 5 alone (bench/emit-probe.ts). It now reads the
-- webhooks subscribed to the very name, through webhooks_event_type_idx, and the
-- patterns (subscriptions with a `*` segment) that begin with the name's first segment
-- or with `*`, through this index, and matches only those.
create index webhooks_pattern_idx on webhooks (split_part(event_type, '.', 1))
  where is_active and strpos(event_type, '*') > 0;
