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
}

/**
 * Records a batch of attempts in one statement: each time goes to the FRONT of
 * request_datetimes, retry_count counts attempts, and the queue row is rescheduled,
 * released or removed. Queue rows are touched only while `workerId` still holds the
 * lease, so a worker whose lease expired cannot undo the work of the one that took over.
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
                            $6::text[], $7::timestamptz[])
         as t(id, at, status, content, delivered, next_kind, next_at)
     ), attempted as (
       update hook_events e
       set request_datetimes = array_prepend(r.at, e.request_datetimes),
           retry_count = coalesce(e.retry_count, 0) + 1,
           response_http_status = r.status,
           response_content = r.content,
           delivered = r.delivered,
           modified_date = r.at
       from r where e.id = r.id
       returning e.id
     ), rescheduled as (
       update hook_event_queue q
       set run_at = case when r.next_kind = 'retry' then r.next_at else q.run_at end,
           locked_by = null, locked_until = null
       from r
       where q.hook_event_id = r.id and r.next_kind in ('retry', 'release') and q.locked_by = $8
       returning q.hook_event_id
     ), finished as (
       delete from hook_event_queue q using r
       where q.hook_event_id = r.id and r.next_kind = 'done'
         and (q.locked_by = $8 or q.locked_by is null or r.delivered)
       returning q.hook_event_id
     )
     select (select count(*) from attempted) as attempted`,
    [
      outcomes.map((o) => o.id),
      outcomes.map((o) => o.at),
      outcomes.map((o) => o.status),
      outcomes.map((o) => o.content),
      outcomes.map((o) => o.delivered),
      outcomes.map((o) => o.next.kind),
      outcomes.map((o) => (o.next.kind === 'retry' ? o.next.at : null)),
      workerId,
    ],
  );
}
