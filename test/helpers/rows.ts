import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { isoMicro } from '../../src/core/clock.js';
import { enqueueHookEvents, type NewHookEvent } from '../../src/queue/enqueue.js';
import type { Db } from '../../src/store/db.js';

/** One webhook's only hook event, as the database holds it (times newest first). */
export interface EventState {
  id: number;
  uuid: string;
  delivered: boolean;
  retry_count: number | null;
  response_http_status: number | null;
  response_content: string | null;
  times: string[];
}

export async function eventOf(db: Db, webhookId: number): Promise<EventState> {
  const { rows } = await db.query<EventState>(
    `select e.id, e.uuid::text as uuid, e.delivered, e.retry_count, e.response_http_status,
            e.response_content,
            array(select oms_ts(t) from unnest(e.request_datetimes) with ordinality as u(t, o)
                  order by o) as times
     from hook_events e where e.webhook_id = $1`,
    [webhookId],
  );
  assert.equal(rows.length, 1, `webhook ${webhookId} should have exactly one event`);
  return rows[0]!;
}

/**
 * `count` other tenants' webhooks of `userId`, written straight into the table: active,
 * at a port where nobody listens, numbered from `from`, webhook N subscribed to
 * `tenantN.updated`, or with `patterns` to `tenantN.*` when N is odd, with `config` as
 * their settings. For tests and probes of what many webhooks cost.
 */
export async function insertOtherWebhooks(
  db: Db,
  userId: number,
  {
    count,
    from = 1,
    patterns = false,
    config = {},
  }: { count: number; from?: number; patterns?: boolean; config?: Record<string, unknown> },
): Promise<void> {
  await db.query(
    `insert into webhooks (user_id, target_url, secret_key, event_type, config,
                           retry_countdown_config)
     select $1, 'http://127.0.0.1:9/', 'whsec_YWJj',
            case when $4 and g % 2 = 1 then 'tenant' || g || '.*' else 'tenant' || g || '.updated' end,
            $5::jsonb, '{"choice":"fixed","kwargs":{"seconds":1}}'
     from generate_series($2::int, $2::int + $3::int - 1) g`,
    [userId, from, count, patterns, JSON.stringify(config)],
  );
}

/**
 * One event queued for a retry an hour away for each of the `count` other tenants'
 * webhooks (insertOtherWebhooks) inserted last, as a failing target's wait. For probes
 * of what webhooks with events waiting cost.
 */
export async function insertWaitingEvents(db: Db, count: number): Promise<void> {
  await db.query(
    `with ins as (
       insert into hook_events (webhook_id, uuid, event_type, retry_count)
       select id, gen_random_uuid(), event_type, 1 from webhooks
       where event_type like 'tenant%' order by id desc limit $1
       returning id, webhook_id
     ), payloads as (
       insert into hook_event_payloads (hook_event_id, request_payload)
       select id, '{}' from ins
     )
     insert into hook_event_queue (hook_event_id, webhook_id, run_at, max_attempts)
     select id, webhook_id, now() + interval '1 hour', 5 from ins`,
    [count],
  );
}

/**
 * A webhook of `userId` written straight into the table, for tests below the API: active,
 * for package.created, at a port where nobody listens, retried every second, with
 * `config` as its settings.
 */
export async function insertWebhook(
  db: Db,
  userId: number,
  config: Record<string, unknown> = {},
): Promise<number> {
  const { rows } = await db.query<{ id: number }>(
    `insert into webhooks (user_id, target_url, secret_key, event_type, config,
                           retry_countdown_config)
     values ($1, 'http://127.0.0.1:9/', 'whsec_YWJj', 'package.created', $2::jsonb,
             '{"choice":"fixed","kwargs":{"seconds":1}}')
     returning id`,
    [userId, JSON.stringify(config)],
  );
  return rows[0]!.id;
}

/** A hook event as the API would enqueue it, for tests that write events directly. */
export const newHookEvent = (
  webhookId: number,
  n: number,
  payload: Record<string, unknown> = { n },
): NewHookEvent => ({
  webhookId,
  uuid: randomUUID(),
  eventType: 'package.created',
  requestPayload: JSON.stringify({ event: { type: 'package.created' }, payload }),
  objectId: n,
  contentTypeId: 4,
  maxAttempts: 3,
});

/** `count` events of `webhookId` queued, due a minute ago (newHookEvent 0 to count - 1). */
export async function queueDue(db: Db, webhookId: number, count: number): Promise<void> {
  await db.transaction((tx) =>
    enqueueHookEvents(
      tx,
      Array.from({ length: count }, (_, n) => newHookEvent(webhookId, n)),
      isoMicro(Date.now() - 60_000),
    ),
  );
}

/** The stored payload of each of the events `ids`, as the text a delivery sends, by id. */
export async function storedBodies(db: Db, ids: number[]): Promise<Map<number, string>> {
  const { rows } = await db.query<{ id: number; body: string }>(
    `select hook_event_id as id, request_payload::text as body
     from hook_event_payloads where hook_event_id = any($1::bigint[])`,
    [ids],
  );
  return new Map(rows.map((r) => [Number(r.id), r.body]));
}
