import { maskConfig, restoreMasked } from '../core/credentials.js';
import { matchesEventType } from '../core/event-type.js';
import type { RetryCountdownConfig } from '../core/retry.js';
import { isInt4, type Queryable } from './db.js';

/**
 * Webhooks: the seed's webhook object, owned by a user. `Scope` limits every query to
 * one user's rows unless it is an admin's.
 */
export interface Scope {
  userId: number;
  isAdmin: boolean;
}

export interface WebhookConfig {
  max_retries?: number;
  timeout?: number;
  auth?: Record<string, unknown>;
  [key: string]: unknown;
}

/** The API's webhook object, keys in the seed's order. */
export interface WebhookJson {
  id: number;
  retry_countdown_config: RetryCountdownConfig;
  created_date: string;
  modified_date: string;
  target_url: string;
  is_active: boolean;
  secret_key: string;
  event_type: string;
  callback: string | null;
  additional_headers: Record<string, string>;
  config: WebhookConfig;
}

export interface WebhookInput {
  retry_countdown_config: RetryCountdownConfig;
  target_url: string;
  is_active: boolean;
  secret_key: string;
  event_type: string;
  callback: string | null;
  additional_headers: Record<string, string>;
  config: WebhookConfig;
}

/** Columns of `webhooks w` that `webhookJson` maps; shared with the hook-event queries. */
export const WEBHOOK_COLUMNS = `w.id as w_id, w.user_id as w_user_id, w.retry_countdown_config as w_retry,
  oms_ts(w.created_date) as w_created, oms_ts(w.modified_date) as w_modified, w.target_url as w_target_url,
  w.is_active as w_is_active, w.secret_key as w_secret_key, w.event_type as w_event_type,
  w.callback as w_callback, w.additional_headers as w_headers, w.config as w_config`;

export interface WebhookRow {
  w_id: number;
  w_user_id: number;
  w_retry: RetryCountdownConfig;
  w_created: string;
  w_modified: string;
  w_target_url: string;
  w_is_active: boolean;
  w_secret_key: string;
  w_event_type: string;
  w_callback: string | null;
  w_headers: Record<string, string>;
  w_config: WebhookConfig;
}

export function webhookJson(row: WebhookRow): WebhookJson {
  return {
    id: row.w_id,
    retry_countdown_config: row.w_retry,
    created_date: row.w_created,
    modified_date: row.w_modified,
    target_url: row.w_target_url,
    is_active: row.w_is_active,
    secret_key: row.w_secret_key,
    event_type: row.w_event_type,
    callback: row.w_callback,
    additional_headers: row.w_headers,
    config: maskConfig(row.w_config),
  };
}

/** `and w.user_id = $n` for non-admins; pushes the parameter. */
export function scopeClause(scope: Scope, params: unknown[]): string {
  if (scope.isAdmin) return '';
  params.push(scope.userId);
  return ` and w.user_id = $${params.length}`;
}

export async function countWebhooks(db: Queryable, scope: Scope): Promise<number> {
  const params: unknown[] = [];
  const { rows } = await db.query<{ n: number }>(
    `select count(*)::int as n from webhooks w where true${scopeClause(scope, params)}`,
    params,
  );
  return rows[0]!.n;
}

export async function listWebhooks(
  db: Queryable,
  scope: Scope,
  limit: number,
  offset: number,
): Promise<WebhookJson[]> {
  const params: unknown[] = [limit, offset];
  const { rows } = await db.query<WebhookRow>(
    `select ${WEBHOOK_COLUMNS} from webhooks w where true${scopeClause(scope, params)}
     order by w.id limit $1 offset $2`,
    params,
  );
  return rows.map(webhookJson);
}

export async function getWebhook(
  db: Queryable,
  scope: Scope,
  id: number,
): Promise<WebhookJson | undefined> {
  const params: unknown[] = [id];
  const { rows } = await db.query<WebhookRow>(
    `select ${WEBHOOK_COLUMNS} from webhooks w where w.id = $1${scopeClause(scope, params)}`,
    params,
  );
  return rows[0] && webhookJson(rows[0]);
}

/** A webhook and the user who owns it, read by id alone; see `inScope`. */
export interface OwnedWebhook {
  userId: number;
  webhook: WebhookJson;
}

/** True when `scope` may see a webhook owned by `userId`: what `scopeClause` asks in SQL. */
export const inScope = (scope: Scope, userId: number): boolean =>
  scope.isAdmin || scope.userId === userId;

/**
 * A webhook by id whoever asks, with its owner, so one cached copy can answer every
 * user; the caller must check `inScope` before using it.
 */
export async function getOwnedWebhook(
  db: Queryable,
  id: number,
): Promise<OwnedWebhook | undefined> {
  // past the column's range, no webhook (and a SQL error)
  if (!isInt4(id)) return undefined;
  const { rows } = await db.query<WebhookRow>(
    `select ${WEBHOOK_COLUMNS} from webhooks w where w.id = $1`,
    [id],
  );
  return rows[0] && { userId: rows[0].w_user_id, webhook: webhookJson(rows[0]) };
}

/**
 * The active webhooks an event of `eventType` goes to, in id order: the ones subscribed
 * to that name and the ones whose pattern matches it. Only those subscribed to the name,
 * and the patterns that begin with its first segment or with `*`, are read (each
 * through its own index, migration 014; two queries in one, as a named statement on
 * PGlite runs without bitmap scans, which an OR of the two would need), so an emit costs
 * about the same however many webhooks other event types have.
 */
export async function listSubscribers(db: Queryable, eventType: string): Promise<WebhookJson[]> {
  const { rows } = await db.query<WebhookRow>(
    `select ${WEBHOOK_COLUMNS} from webhooks w
     where w.is_active and w.event_type = $1 and strpos(w.event_type, '*') = 0
     union all
     select ${WEBHOOK_COLUMNS} from webhooks w
     where w.is_active and strpos(w.event_type, '*') > 0
       and split_part(w.event_type, '.', 1) in (split_part($1, '.', 1), '*')
     order by w_id`,
    [eventType],
    'oms_subscribers',
  );
  return rows.filter((r) => matchesEventType(r.w_event_type, eventType)).map(webhookJson);
}

const inputParams = (input: WebhookInput): unknown[] => [
  JSON.stringify(input.retry_countdown_config),
  input.target_url,
  input.is_active,
  input.secret_key,
  input.event_type,
  input.callback,
  JSON.stringify(input.additional_headers),
  JSON.stringify(input.config),
];

export async function insertWebhook(
  db: Queryable,
  userId: number,
  input: WebhookInput,
): Promise<WebhookJson> {
  const { rows } = await db.query<WebhookRow>(
    `insert into webhooks as w (retry_countdown_config, target_url, is_active, secret_key, event_type,
       callback, additional_headers, config, user_id)
     values ($1::jsonb, $2, $3, $4, $5, $6, $7::jsonb, $8::jsonb, $9)
     returning ${WEBHOOK_COLUMNS}`,
    [...inputParams(input), userId],
  );
  return webhookJson(rows[0]!);
}

export async function updateWebhook(
  db: Queryable,
  scope: Scope,
  id: number,
  input: WebhookInput,
): Promise<WebhookJson | undefined> {
  const stored = await db.query<{ config: WebhookConfig }>(
    'select config from webhooks where id = $1',
    [id],
  );
  input = { ...input, config: restoreMasked(input.config, stored.rows[0]?.config) };
  const params: unknown[] = [...inputParams(input), id];
  const { rows } = await db.query<WebhookRow>(
    `update webhooks w set retry_countdown_config = $1::jsonb, target_url = $2, is_active = $3,
       secret_key = $4, event_type = $5, callback = $6, additional_headers = $7::jsonb,
       config = $8::jsonb, modified_date = now()
     where w.id = $9${scopeClause(scope, params)}
     returning ${WEBHOOK_COLUMNS}`,
    params,
  );
  return rows[0] && webhookJson(rows[0]);
}

export async function deleteWebhook(db: Queryable, scope: Scope, id: number): Promise<boolean> {
  const params: unknown[] = [id];
  const { rowCount } = await db.query(
    `delete from webhooks w where w.id = $1${scopeClause(scope, params)}`,
    params,
  );
  return rowCount > 0;
}
