import type { Queryable } from './db.js';
import {
  scopeClause,
  WEBHOOK_COLUMNS,
  webhookJson,
  type Scope,
  type WebhookJson,
  type WebhookRow,
} from './webhooks.js';

/**
 * Secret rotation: the new secret signs from now on; the one it replaces keeps signing
 * next to it until `expiresAt`, so receivers can move to the new secret at their pace.
 * Only one previous secret is kept: rotating again during a grace ends the older one.
 */
export async function rotateSecret(
  db: Queryable,
  scope: Scope,
  id: number,
  newSecret: string,
  expiresAt: string,
): Promise<(WebhookJson & { previous_secret_expires_at: string }) | undefined> {
  const params: unknown[] = [id, newSecret, expiresAt];
  const { rows } = await db.query<WebhookRow & { previous_expires: string }>(
    `update webhooks w set previous_secret_key = w.secret_key,
       previous_secret_expires_at = $3::timestamptz, secret_key = $2, modified_date = now()
     where w.id = $1${scopeClause(scope, params)}
     returning ${WEBHOOK_COLUMNS}, oms_ts(w.previous_secret_expires_at) as previous_expires`,
    params,
  );
  const row = rows[0];
  return row && { ...webhookJson(row), previous_secret_expires_at: row.previous_expires };
}
