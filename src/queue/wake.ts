import type { Db, Queryable } from '../store/db.js';

/**
 * Wake-ups for workers. A NOTIFY sent inside the publishing transaction is delivered at
 * commit: on PostgreSQL to every listening process, on PGlite to this process. Workers
 * also poll, so a lost notification only delays work, never loses it.
 */
export const DUE_CHANNEL = 'oms_hooks_due';

export async function notifyDue(tx: Queryable): Promise<void> {
  await tx.query(`select pg_notify('${DUE_CHANNEL}', '')`);
}

export function onDue(db: Db, wake: () => void): Promise<() => Promise<void>> {
  return db.listen(DUE_CHANNEL, () => wake());
}

/** Sent by a trigger on `webhooks` when one is updated or deleted; the payload is its id. */
export const WEBHOOK_CHANGED_CHANNEL = 'oms_hooks_webhook_changed';

export function onWebhookChanged(
  db: Db,
  changed: (webhookId: number) => void,
): Promise<() => Promise<void>> {
  return db.listen(WEBHOOK_CHANGED_CHANNEL, (payload) => {
    const id = Number(payload);
    if (Number.isInteger(id) && id > 0) changed(id);
  });
}
