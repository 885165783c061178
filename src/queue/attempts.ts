import type { Queryable } from '../store/db.js';
import { scopeClause, type Scope } from '../store/webhooks.js';

/** One row of delivery_attempts as the API shows it. */
export interface AttemptJson {
  id: number;
  attempted_at: string;
  duration_ms: number;
  response_http_status: number | null;
  error: string | null;
  response_excerpt: string;
}

/**
 * The attempts of one hook event, oldest first, or undefined when the event does not
 * exist or belongs to someone else (the same 404 either way).
 */
export async function listAttempts(
  db: Queryable,
  scope: Scope,
  eventId: number,
  limit: number,
  offset: number,
): Promise<{ count: number; results: AttemptJson[] } | undefined> {
  if (!Number.isSafeInteger(eventId)) return undefined;
  const params: unknown[] = [eventId];
  const owned = `select e.id from hook_events e join webhooks w on w.id = e.webhook_id
                 where e.id = $1${scopeClause(scope, params)}`;
  params.push(limit, offset);
  const { rows } = await db.query<{ found: boolean; count: number; results: AttemptJson[] }>(
    `select exists (${owned}) as found,
            (select count(*)::int from delivery_attempts a where a.hook_event_id in (${owned})) as count,
            coalesce((select json_agg(p order by p.id) from (
              select a.id, oms_ts(a.attempted_at) as attempted_at, a.duration_ms,
                     a.response_http_status, a.error, a.response_excerpt
              from delivery_attempts a where a.hook_event_id in (${owned})
              order by a.id limit $${params.length - 1} offset $${params.length}) p), '[]') as results`,
    params,
  );
  const row = rows[0]!;
  return row.found ? { count: row.count, results: row.results } : undefined;
}
