import { stringifyExact } from '../core/exact-json.js';
import type { Db, Queryable } from '../store/db.js';
import {
  LIMITED,
  sharingWebhooks,
  WEBHOOK_COLUMNS,
  type ClaimedEvent,
  type ClaimRow,
} from './claim.js';
import type { HandoffOffer } from './handoff.js';
import { MAX_NOTIFIED_WEBHOOKS, notifyDueSql } from './wake.js';

export interface NewHookEvent {
  webhookId: number;
  uuid: string;
  eventType: string;
  /**
   * request_payload as JSON text, stored and sent as it is. The API serializes the
   * payload once, for its size check, and builds this around it.
   */
  requestPayload: string;
  objectId: unknown;
  contentTypeId: number | null;
  /** retry_count at which attempts stop. */
  maxAttempts: number;
}

/**
 * One statement writes a set of hook events, their payloads (a table of their own, see
 * migration 011), their queue rows due at `$2`, and the NOTIFY that wakes the workers,
 * so a group commit is a single round trip: outside a transaction the statement is its
 * own, committed before the query resolves (the pg client resolves on ReadyForQuery,
 * which the server sends after the commit), and the NOTIFY goes out at that commit;
 * inside one, all of it waits for the caller's COMMIT.
 *
 * The rows arrive as JSON: one array of the events' other fields, and one of their
 * payloads (`$7`), in the same order. One JSON.stringify in Node and a JSON parse in the
 * server, where seven parallel arrays cost an escaping pass per element in the pg client
 * (an array of payloads most of all) and an array parse before the JSON one. The
 * payloads come apart because json_to_recordset copies out every string it passes, the
 * ones deep inside a payload too, a character at a time, while json_array_elements reads
 * each element as the text it is; as json (not jsonb) neither is parsed further, and each
 * payload is stored as the very text of its element, which is what every attempt sends
 * (migration 010). In a loop of statements of 32 events of 1 KB payloads that only read
 * them, PostgreSQL 15 spent 17-21 µs of CPU per event against 24-34 with the payloads
 * inside the records (four alternated rounds); PGlite, which is PostgreSQL 18 and copies
 * strings in runs, read the same either way (45-59 µs).
 *
 * Hand-off: up to `$4` of the events, of active webhooks without shared limits and not
 * in `$6`, are queued already leased to worker `$3` for `$5` ms, and returned as that
 * worker needs them, read in the same snapshot as a claim would read them. They skip
 * the NOTIFY, the claim and its commit. With `$4` = 0 nothing is handed, the result is
 * one row of nulls, and every event waits for a claim as before.
 */
const ENQUEUE_SQL = `with input as (
    -- each event's id is drawn here, so that the statements below take it from the input
    -- instead of matching what the insert returned back to it
    select nextval('hook_events_id_seq'::regclass) as id, t.*, p.request_payload
    from rows from (json_to_recordset($1::json) as (webhook_id int, uuid uuid,
        event_type text, object_id jsonb, content_type_id int, max_attempts int))
      with ordinality as t(webhook_id, uuid, event_type, object_id, content_type_id,
        max_attempts, n)
    join json_array_elements($7::json) with ordinality as p(request_payload, n) using (n)
    -- ids in the order the events came (the sort runs before nextval does)
    order by n
  ), inserted as (
    insert into hook_events (id, webhook_id, uuid, event_type, object_id, content_type_id,
                             created_date, modified_date)
    -- a JSON null becomes SQL NULL in a jsonb column; object_id keeps it as JSON
    select id, webhook_id, uuid, event_type, coalesce(object_id, 'null'), content_type_id,
           $2::timestamptz, $2::timestamptz
    from input
  ), payloads as (
    insert into hook_event_payloads (hook_event_id, request_payload)
    select id, request_payload from input
  ), handed as (
    -- each event's webhook looked up by key (the LIMIT keeps the subquery a lookup per
    -- event): as a join, the planner, which expects 100 events, reads every webhook
    select i.id from input i
    cross join lateral (
      select from webhooks w
      where w.id = i.webhook_id and w.is_active and not ${LIMITED} and w.id <> all($6::int[])
      limit 1
    ) w
    order by i.id
    limit $4
  ), queued as (
    insert into hook_event_queue (hook_event_id, webhook_id, run_at, max_attempts, locked_by,
                                  locked_until)
    select i.id, i.webhook_id, $2::timestamptz, i.max_attempts,
           case when h.id is not null then $3::text end,
           case when h.id is not null then $2::timestamptz + $5 * interval '1 millisecond' end
    from input i left join handed h on h.id = i.id
  ), woke as (
    -- naming the statement's webhooks ($8), so that a busy worker looks at those alone
    -- (see SWEEP_MS in worker.ts)
    select count(*) as n from (
      select ${notifyDueSql('$8::text')}
      where (select count(*) from input) > (select count(*) from handed)
    ) notified
  )
  select h.* from woke left join (
    -- the handed events as a claim reads them, less what the caller already has or can
    -- share: no payload (the caller sent it, and the stored text is that text), and the
    -- webhook's settings on the first event of each webhook only
    select e.id, e.uuid, e.event_type, null::int as retry_count, e.max_attempts, e.webhook_id,
           ${WEBHOOK_COLUMNS}
    from (
      select i.id, i.uuid, i.webhook_id, i.event_type, i.max_attempts,
             i.id = min(i.id) over (partition by i.webhook_id) as first
      from handed join input i on i.id = handed.id
    ) e left join lateral (
      select w.* from webhooks w where e.first and w.id = e.webhook_id limit 1
    ) w on true
    order by e.id
  ) h on true`;

/**
 * Most JSON text one statement carries (UTF-16 units, so at most three times as many
 * bytes): far below the 1 GB limit on one value, and a bound on the client's
 * memory when many large payloads are gathered. A larger set takes several statements.
 */
const MAX_STATEMENT_CHARS = 32 * 1024 * 1024;

/**
 * One statement's events for ENQUEUE_SQL: their fields, their payloads, and what its
 * NOTIFY says: their webhooks, comma separated, or nothing when there are more than
 * MAX_NOTIFIED_WEBHOOKS. It names those of handed events too; a worker then looks at a
 * webhook it need not have, one probe of the queue, where leaving them out in SQL cost
 * PostgreSQL 1.1-2.1 µs more per event published in three alternated pairs of
 * `bench/publish-probe.ts 8 api`.
 */
export interface Document {
  rows: string;
  payloads: string;
  webhooks: string;
}

/** The events as Documents, each within `maxChars` (bar one huge row), in their order. */
export function documents(events: NewHookEvent[], maxChars = MAX_STATEMENT_CHARS): Document[] {
  const docs: Document[] = [];
  let rows: string[] = [];
  let payloads: string[] = [];
  let webhooks = new Set<number>();
  let chars = 0;
  const flush = () => {
    docs.push({
      rows: `[${rows.join(',')}]`,
      payloads: `[${payloads.join(',')}]`,
      webhooks: webhooks.size <= MAX_NOTIFIED_WEBHOOKS ? [...webhooks].join(',') : '',
    });
    rows = [];
    payloads = [];
    webhooks = new Set();
    chars = 0;
  };
  for (const e of events) {
    const row =
      `{"webhook_id":${e.webhookId},"uuid":${JSON.stringify(e.uuid)},` +
      `"event_type":${JSON.stringify(e.eventType)},` +
      `"object_id":${stringifyExact(e.objectId ?? null)},"content_type_id":${e.contentTypeId},` +
      `"max_attempts":${e.maxAttempts}}`;
    // the payload goes in as the text it already is, not parsed and written again
    const size = row.length + e.requestPayload.length + 2;
    if (rows.length > 0 && chars + size > maxChars) flush();
    rows.push(row);
    payloads.push(e.requestPayload);
    webhooks.add(e.webhookId);
    chars += size;
  }
  if (rows.length > 0) flush();
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
  for (const doc of documents(events))
    await tx.query(ENQUEUE_SQL, params(doc, runAt), 'oms_enqueue');
}

/** A worker to lease fresh events to, as `Handoff.offer` gave it, and for how long. */
export interface HandoffTo {
  offer: HandoffOffer;
  leaseMs: number;
}

const params = (doc: Document, runAt: string, to?: HandoffTo) =>
  to
    ? [
        doc.rows,
        runAt,
        to.offer.workerId,
        to.offer.room,
        to.leaseMs,
        to.offer.full,
        doc.payloads,
        doc.webhooks,
      ]
    : [doc.rows, runAt, null, 0, 0, [], doc.payloads, doc.webhooks];

/**
 * Writes hook events durably, all or none, and resolves after the commit: in one
 * statement, its own transaction, when they fit in one (always, short of megabytes of
 * payloads); else in a transaction of several, which hands nothing off. Resolves to the
 * events leased to `to`'s worker, which the caller must pass on to it.
 */
export async function enqueueCommitted(
  db: Db,
  events: NewHookEvent[],
  runAt: string,
  to?: HandoffTo,
): Promise<ClaimedEvent[]> {
  const docs = documents(events);
  if (docs.length === 0) return [];
  if (docs.length === 1) {
    // rows as a claim's, less the body, with the settings null past a webhook's first
    const { rows } = await db.query<Omit<ClaimRow, 'body'>>(
      ENQUEUE_SQL,
      params(docs[0]!, runAt, to),
      'oms_enqueue',
    );
    const payloads = new Map(events.map((e) => [e.uuid.toLowerCase(), e.requestPayload]));
    const handed = rows
      .filter((r) => r.id !== null)
      .map((r) => {
        const body = payloads.get(r.uuid);
        if (body === undefined) throw new Error(`handed event ${r.uuid} was not in the publish`);
        return { ...r, body };
      });
    return sharingWebhooks(handed, 0);
  }
  await db.transaction(async (tx) => {
    for (const doc of docs) await tx.query(ENQUEUE_SQL, params(doc, runAt), 'oms_enqueue');
  });
  return [];
}
