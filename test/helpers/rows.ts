import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { NewHookEvent } from '../../src/queue/enqueue.js';
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

/** A hook event as the API would enqueue it, for tests that write events directly. */
export const newHookEvent = (
  webhookId: number,
  n: number,
  payload: Record<string, unknown> = { n },
): NewHookEvent => ({
  webhookId,
  uuid: randomUUID(),
  eventType: 'package.created',
  requestPayload: { event: { type: 'package.created' }, payload },
  objectId: n,
  contentTypeId: 4,
  maxAttempts: 3,
});
