import type { Queryable } from '../store/db.js';

/** What happens to an event's queue row after an attempt. */
export type Next =
  | { kind: 'retry'; at: string } // schedule the next attempt
  | { kind: 'done' } // delivered, or its attempts are spent: leave the queue
  | { kind: 'release' }; // keep the schedule as it was (a manual resend that failed)

export interface AttemptOutcome {
  id: number;
  /** When the request was sent, ISO with microseconds. */
  at: string;
  status: number | null;
  content: string;
  delivered: boolean;
  next: Next;
  durationMs: number;
  /** The readable reason when no response arrived; null when the target answered. */
  error: string | null;
  /** Who made the attempt: a worker id, or the resend that made it. */
  worker: string;
  /** The target answered 410 Gone: the webhook is deactivated with this attempt. */
  deactivate: boolean;
}

/** How much of a response each delivery_attempts row keeps. */
export const EXCERPT_CHARS = 1024;

/**
 * Records a batch of attempts in one statement: each time goes to the FRONT of
 * request_datetimes, retry_count counts attempts, a delivery_attempts row is added, the
 * queue row is rescheduled, released or removed, and a webhook that answered 410 Gone
 * is deactivated. Queue rows are touched only while `workerId` still holds the lease, so
 * a worker whose lease expired cannot undo the work of the one that took over.
 */
export async function recordAttempts(
  db: Queryable,
  workerId: string,
  outcomes: AttemptOutcome[],
): Promise<void> {
  if (outcomes.length === 0) return;
  await db.query(
    `with r as (
       select * from unnest($1::bigint[], $2::timestamptz[], $3::int[], $4::text[], $5::bool[],
                            $6::text[], $7::timestamptz[], $9::int[], $10::text[], $11::text[],
                            $12::bool[])
         as t(id, at, status, content, delivered, next_kind, next_at, duration_ms, error, worker,
              deactivate)
     ), attempted as (
       update hook_events e
       set request_datetimes = array_prepend(r.at, e.request_datetimes),
           retry_count = coalesce(e.retry_count, 0) + 1,
           response_http_status = r.status,
           response_content = r.content,
           delivered = r.delivered,
           -- never before the event's created_date (migration 028): this time is the
           -- worker's clock, the created_date the API's
           modified_date = greatest(r.at, e.created_date)
       from r where e.id = r.id
       returning e.id, e.webhook_id
     ), logged as (
       insert into delivery_attempts (hook_event_id, webhook_id, attempted_at, duration_ms,
                                      response_http_status, error, response_excerpt, worker)
       select r.id, a.webhook_id, r.at, r.duration_ms, r.status, r.error,
              case when r.status is null then '' else left(r.content, ${EXCERPT_CHARS}) end, r.worker
       from r join attempted a on a.id = r.id
       returning 1
     ), gone as (
       update webhooks w set is_active = false, modified_date = g.at
       from (select a.webhook_id, max(r.at) as at from r join attempted a on a.id = r.id
             where r.deactivate group by a.webhook_id) g
       where w.id = g.webhook_id and w.is_active
       returning w.id
     ), rescheduled as (
       update hook_event_queue q
       set run_at = case when r.next_kind = 'retry' then r.next_at else q.run_at end,
           locked_by = null, locked_until = null, gated = false
       from r
       where q.hook_event_id = r.id and r.next_kind in ('retry', 'release') and q.locked_by = $8
       returning q.hook_event_id
     ), finished as (
       delete from hook_event_queue q using r
       where q.hook_event_id = r.id and r.next_kind = 'done'
         and (q.locked_by = $8 or q.locked_by is null or r.delivered)
       returning q.hook_event_id
     )
     select (select count(*) from attempted) as attempted, (select count(*) from logged) as logged,
            (select count(*) from gone) as gone`,
    [
      outcomes.map((o) => o.id),
      outcomes.map((o) => o.at),
      outcomes.map((o) => o.status),
      outcomes.map((o) => o.content),
      outcomes.map((o) => o.delivered),
      outcomes.map((o) => o.next.kind),
      outcomes.map((o) => (o.next.kind === 'retry' ? o.next.at : null)),
      workerId,
      outcomes.map((o) => Math.max(0, Math.round(o.durationMs))),
      outcomes.map((o) => o.error),
      outcomes.map((o) => o.worker),
      outcomes.map((o) => o.deactivate),
    ],
    'oms_record',
  );
}
