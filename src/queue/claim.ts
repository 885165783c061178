import type { RetryCountdownConfig } from '../core/retry.js';
import type { Queryable } from '../store/db.js';
import type { WebhookConfig } from '../store/webhooks.js';

/** What a worker needs to make one attempt. */
export interface ClaimedEvent {
  id: number;
  uuid: string;
  eventType: string;
  /** request_payload exactly as stored, sent byte for byte (large numbers stay exact). */
  body: string;
  retryCount: number;
  maxAttempts: number;
  webhook: {
    id: number;
    targetUrl: string;
    secretKey: string;
    isActive: boolean;
    callback: string | null;
    additionalHeaders: Record<string, string>;
    config: WebhookConfig;
    retryCountdownConfig: RetryCountdownConfig;
  };
}

interface ClaimRow {
  id: number;
  uuid: string;
  event_type: string;
  body: string;
  retry_count: number | null;
  max_attempts: number | null;
  webhook_id: number;
  target_url: string;
  secret_key: string;
  is_active: boolean;
  callback: string | null;
  additional_headers: Record<string, string>;
  config: WebhookConfig;
  retry_countdown_config: RetryCountdownConfig;
}

const EVENT_COLUMNS = `e.id, e.uuid, e.event_type, e.request_payload::text as body, e.retry_count,
  w.id as webhook_id, w.target_url, w.secret_key, w.is_active, w.callback, w.additional_headers,
  w.config, w.retry_countdown_config`;

const toClaimed = (r: ClaimRow, defaultMaxAttempts: number): ClaimedEvent => ({
  id: r.id,
  uuid: r.uuid,
  eventType: r.event_type,
  body: r.body,
  retryCount: r.retry_count ?? 0,
  maxAttempts: r.max_attempts ?? defaultMaxAttempts,
  webhook: {
    id: r.webhook_id,
    targetUrl: r.target_url,
    secretKey: r.secret_key,
    isActive: r.is_active,
    callback: r.callback,
    additionalHeaders: r.additional_headers,
    config: r.config,
    retryCountdownConfig: r.retry_countdown_config,
  },
});

export interface ClaimOptions {
  workerId: string;
  /** The claiming clock's time, ISO with microseconds. */
  now: string;
  leaseMs: number;
  limit: number;
}

/**
 * Claims up to `limit` due events under a lease. `SKIP LOCKED` lets any number of
 * workers claim side by side without waiting on each other or taking the same row; a
 * row whose lease has expired (its worker died) is due again. Events of an inactive
 * webhook stay queued and untouched: deactivating pauses a webhook, reactivating resumes.
 */
export async function claimDue(db: Queryable, o: ClaimOptions): Promise<ClaimedEvent[]> {
  const { rows } = await db.query<ClaimRow>(
    `with due as (
       select q.hook_event_id from hook_event_queue q
       join webhooks w on w.id = q.webhook_id and w.is_active
       where q.run_at <= $1::timestamptz and (q.locked_until is null or q.locked_until <= $1::timestamptz)
       order by q.run_at, q.hook_event_id
       limit $2
       for update of q skip locked
     ), claimed as (
       update hook_event_queue q
       set locked_by = $3, locked_until = $1::timestamptz + $4 * interval '1 millisecond'
       from due where q.hook_event_id = due.hook_event_id
       returning q.hook_event_id, q.max_attempts
     )
     select ${EVENT_COLUMNS}, c.max_attempts
     from claimed c join hook_events e on e.id = c.hook_event_id join webhooks w on w.id = e.webhook_id
     order by e.id`,
    [o.now, o.limit, o.workerId, o.leaseMs],
  );
  return rows.map((r) => toClaimed(r, 0));
}

/**
 * Loads one event for a manual resend. When it is still queued, it is leased to
 * `workerId` so no worker attempts it at the same moment; when a worker holds the lease
 * right now, the answer is 'busy' and nothing is sent.
 */
export async function claimForResend(
  db: Queryable,
  id: number,
  o: Omit<ClaimOptions, 'limit'>,
  defaultMaxAttempts: number,
): Promise<ClaimedEvent | 'busy' | undefined> {
  const { rows } = await db.query<ClaimRow & { busy: boolean }>(
    `with leased as (
       update hook_event_queue q
       set locked_by = $2, locked_until = $3::timestamptz + $4 * interval '1 millisecond'
       where q.hook_event_id = $1 and (q.locked_until is null or q.locked_until <= $3::timestamptz)
       returning q.hook_event_id
     )
     select ${EVENT_COLUMNS}, q.max_attempts,
       (q.hook_event_id is not null and not exists (select 1 from leased)) as busy
     from hook_events e join webhooks w on w.id = e.webhook_id
     left join hook_event_queue q on q.hook_event_id = e.id
     where e.id = $1`,
    [id, o.workerId, o.now, o.leaseMs],
  );
  const row = rows[0];
  if (!row) return undefined;
  return row.busy ? 'busy' : toClaimed(row, defaultMaxAttempts);
}
