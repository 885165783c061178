import type { Db, Queryable } from '../store/db.js';
import { DUE_CHANNEL } from './wake.js';

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
 * One statement writes a set of hook events, their queue rows due at `$2`, and the
 * NOTIFY that wakes the workers, so a group commit is a single round trip: outside a
 * transaction the statement is its own, committed before the query resolves (the pg
 * client resolves on ReadyForQuery, which the server sends after the commit), and the
 * NOTIFY goes out at that commit; inside one, both wait for the caller's COMMIT.
 *
 * The rows arrive as one JSON array: one JSON.stringify in Node and one jsonb parse in
 * the server, where seven parallel arrays cost an escaping pass per element in the pg
 * client (a jsonb[] of payloads most of all) and an array parse before the jsonb one.
 */
const ENQUEUE_SQL = `with input as (
    select * from jsonb_to_recordset($1::jsonb) as t(webhook_id int, uuid uuid, event_type text,
      request_payload jsonb, object_id jsonb, content_type_id int, max_attempts int)
  ), inserted as (
    insert into hook_events (webhook_id, uuid, event_type, request_payload, object_id,
                             content_type_id, created_date, modified_date)
    -- a JSON null becomes SQL NULL in a jsonb column; object_id keeps it as JSON
    select webhook_id, uuid, event_type, request_payload, coalesce(object_id, 'null'),
           content_type_id, $2::timestamptz, $2::timestamptz
    from input
    returning id, uuid, webhook_id
  ), queued as (
    insert into hook_event_queue (hook_event_id, webhook_id, run_at, max_attempts)
    select i.id, i.webhook_id, $2::timestamptz, input.max_attempts
    from inserted i join input on input.uuid = i.uuid
  )
  select pg_notify('${DUE_CHANNEL}', '')`;

/**
 * Most JSON text one statement carries (UTF-16 units, so at most three times as many
 * bytes): far below jsonb's 256 MB limit on one value, and a bound on the client's
 * memory when many large payloads are gathered. A larger set takes several statements.
 */
const MAX_STATEMENT_CHARS = 32 * 1024 * 1024;

/** The events as JSON arrays for ENQUEUE_SQL, each within MAX_STATEMENT_CHARS (bar one huge row). */
function documents(events: NewHookEvent[]): string[] {
  const docs: string[] = [];
  let rows: string[] = [];
  let chars = 0;
  for (const e of events) {
    const row = JSON.stringify({
      webhook_id: e.webhookId,
      uuid: e.uuid,
      event_type: e.eventType,
      request_payload: e.requestPayload,
      object_id: e.objectId ?? null,
      content_type_id: e.contentTypeId,
      max_attempts: e.maxAttempts,
    });
    if (rows.length > 0 && chars + row.length > MAX_STATEMENT_CHARS) {
      docs.push(`[${rows.join(',')}]`);
      rows = [];
      chars = 0;
    }
    rows.push(row);
    chars += row.length + 1;
  }
  if (rows.length > 0) docs.push(`[${rows.join(',')}]`);
  return docs;
}

/**
 * Writes hook events and their queue rows, due at `runAt`, and wakes the workers at
 * commit. Call it inside the publishing transaction: the caller answers only after
 * commit, so an accepted event is never lost.
 */
export async function enqueueHookEvents(
  tx: Queryable,
  events: NewHookEvent[],
  runAt: string,
): Promise<void> {
  for (const doc of documents(events)) await tx.query(ENQUEUE_SQL, [doc, runAt], 'oms_enqueue');
}

/**
 * Writes hook events durably, all or none, and resolves after the commit: in one
 * statement, its own transaction, when they fit in one (always, short of megabytes of
 * payloads); else in a transaction of several.
 */
export async function enqueueCommitted(
  db: Db,
  events: NewHookEvent[],
  runAt: string,
): Promise<void> {
  const docs = documents(events);
  if (docs.length === 0) return;
  if (docs.length === 1) {
    await db.query(ENQUEUE_SQL, [docs[0], runAt], 'oms_enqueue');
    return;
  }
  await db.transaction(async (tx) => {
    for (const doc of docs) await tx.query(ENQUEUE_SQL, [doc, runAt], 'oms_enqueue');
  });
}
