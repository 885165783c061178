import type { Queryable } from '../store/db.js';
import { notifyDue } from './wake.js';

export interface NewHookEvent {
  webhookId: number;
  uuid: string;
  eventType: string;
  requestPayload: unknown;
  objectId: unknown;
  contentTypeId: number | null;
  /** retry_count at which attempts stop. */
  maxAttempts: number;
}

/**
 * Writes hook events and their queue rows in one statement, due at `runAt`, and wakes
 * the workers at commit. Call it inside the publishing transaction: the caller answers
 * only after commit, so an accepted event is never lost.
 */
export async function enqueueHookEvents(
  tx: Queryable,
  events: NewHookEvent[],
  runAt: string,
): Promise<void> {
  if (events.length === 0) return;
  await tx.query(
    `with input as (
       select * from unnest($1::int[], $2::uuid[], $3::text[], $4::jsonb[], $5::jsonb[], $6::int[], $7::int[])
         as t(webhook_id, uuid, event_type, request_payload, object_id, content_type_id, max_attempts)
     ), inserted as (
       insert into hook_events (webhook_id, uuid, event_type, request_payload, object_id, content_type_id,
                                created_date, modified_date)
       select webhook_id, uuid, event_type, request_payload, object_id, content_type_id, $8::timestamptz, $8::timestamptz
       from input
       returning id, uuid, webhook_id
     )
     insert into hook_event_queue (hook_event_id, webhook_id, run_at, max_attempts)
     select i.id, i.webhook_id, $8::timestamptz, input.max_attempts
     from inserted i join input on input.uuid = i.uuid`,
    [
      events.map((e) => e.webhookId),
      events.map((e) => e.uuid),
      events.map((e) => e.eventType),
      events.map((e) => JSON.stringify(e.requestPayload)),
      events.map((e) => JSON.stringify(e.objectId ?? null)),
      events.map((e) => e.contentTypeId),
      events.map((e) => e.maxAttempts),
      runAt,
    ],
  );
  await notifyDue(tx);
}
