import type { Queryable } from '../store/db.js';
import { scopeClause, type Scope } from '../store/webhooks.js';
import { notifyDue } from './wake.js';

export interface RequeueFilters {
  webhook?: number;
  event_type?: string;
  /** created_date bounds, ISO literals with a zone. */
  since?: string;
  until?: string;
}

/**
 * Puts undelivered events that are no longer queued (their attempts were spent, or the
 * target answered 410) back in the queue, due at `now`, with a fresh budget: as many
 * attempts again as the webhook's max_retries. One statement; the workers are woken at
 * commit. Events of an inactive webhook are queued too and wait until it is reactivated.
 * The events read are locked against deletion until commit: the queue has no foreign key
 * to them, and an event deleted after this read would otherwise leave its row behind.
 */
export async function requeueUndelivered(
  tx: Queryable,
  scope: Scope,
  filters: RequeueFilters,
  now: string,
  defaultMaxRetries: number,
): Promise<number> {
  const params: unknown[] = [now, defaultMaxRetries];
  const where: string[] = [];
  const add = (sql: (n: string) => string, value: unknown) => {
    params.push(value);
    where.push(sql(`$${params.length}`));
  };
  if (filters.webhook !== undefined) add((n) => `e.webhook_id = ${n}`, filters.webhook);
  if (filters.event_type !== undefined) add((n) => `e.event_type = ${n}`, filters.event_type);
  if (filters.since !== undefined) add((n) => `e.created_date >= ${n}::timestamptz`, filters.since);
  if (filters.until !== undefined) add((n) => `e.created_date <= ${n}::timestamptz`, filters.until);
  const { rows } = await tx.query<{ n: number }>(
    `with requeued as (
       insert into hook_event_queue (hook_event_id, webhook_id, run_at, max_attempts)
       select e.id, e.webhook_id, $1::timestamptz,
              coalesce(e.retry_count, 0) +
                case when jsonb_typeof(w.config->'max_retries') = 'number'
                     then (w.config->>'max_retries')::numeric::int else $2::int end
       from hook_events e join webhooks w on w.id = e.webhook_id
       where not e.delivered
         and not exists (select 1 from hook_event_queue q where q.hook_event_id = e.id)
         ${where.map((p) => `and ${p}`).join(' ')}${scopeClause(scope, params)}
       -- an event deleted meanwhile is skipped, and one deleted later takes its queue
       -- row with it (the trigger of migration 009), as the foreign key's lock did
       for key share of e
       on conflict (hook_event_id) do nothing
       returning 1
     )
     select count(*)::int as n from requeued`,
    params,
  );
  const n = rows[0]!.n;
  if (n > 0) await notifyDue(tx);
  return n;
}
