import type { Logger } from 'pino';
import { postCallback } from '../delivery/callback.js';
import type { Sender } from '../delivery/sender.js';
import type { Db } from '../store/db.js';
import { withMaintenanceLock } from './lock.js';

export const DISABLED_EVENT = 'webhook.disabled';

export interface Disabled {
  id: number;
  callback: string | null;
  secret_key: string;
  /** The first failed attempt of the current streak, as the API prints times. */
  since: string;
}

/**
 * Deactivates every active webhook whose attempts have all failed since before `cutoff`:
 * its current failure streak (attempts made after its last delivery) began at or
 * before `cutoff`, so nothing was delivered in the window since. An attempt's time is
 * the oldest entry of its event's request_datetimes (the newest is first).
 */
export async function disableFailingWebhooks(
  db: Db,
  cutoff: string,
  now: string,
): Promise<Disabled[]> {
  const disabled = await withMaintenanceLock(db, async (tx) => {
    // Candidates come from the undelivered index first, so the scan of a webhook's
    // delivered events only happens for the few webhooks that failed long ago.
    const { rows } = await tx.query<Disabled>(
      `with failed as (
         select e.webhook_id, e.request_datetimes[array_upper(e.request_datetimes, 1)] as first_at
         from hook_events e join webhooks w on w.id = e.webhook_id and w.is_active
         where not e.delivered and e.retry_count > 0
       ), last_ok as (
         select c.webhook_id,
                (select max(d.request_datetimes[1]) from hook_events d
                 where d.webhook_id = c.webhook_id and d.delivered) as at
         from (select distinct webhook_id from failed where first_at <= $1::timestamptz) c
       ), streaks as (
         select f.webhook_id, min(f.first_at) as since
         from failed f join last_ok l on l.webhook_id = f.webhook_id
         where l.at is null or f.first_at > l.at
         group by f.webhook_id
       )
       update webhooks w set is_active = false, modified_date = $2::timestamptz
       from streaks s
       where w.id = s.webhook_id and s.since <= $1::timestamptz
       returning w.id, w.callback, w.secret_key, oms_ts(s.since) as since`,
      [cutoff, now],
    );
    return rows;
  });
  return disabled ?? [];
}

/** Tells a deactivated webhook's callback why (best effort, like every callback). */
export async function notifyDisabled(
  sender: Sender,
  webhook: Disabled,
  days: number,
  timeoutMs: number,
  logger: Logger,
): Promise<void> {
  if (!webhook.callback) return;
  const body = JSON.stringify({
    event: { type: DISABLED_EVENT },
    webhook: webhook.id,
    is_active: false,
    failing_since: webhook.since,
    reason:
      `Every delivery attempt since ${webhook.since} has failed, for more than ${days} ` +
      'days; the webhook was deactivated. Fix the target and set is_active to true to resume.',
  });
  await postCallback(
    sender,
    { url: webhook.callback, secret: webhook.secret_key, eventName: DISABLED_EVENT, body },
    Date.now(),
    timeoutMs,
    logger,
    { webhook: webhook.id },
  );
}
