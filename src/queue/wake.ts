import type { Db, Queryable } from '../store/db.js';

/**
 * Wake-ups for workers. A NOTIFY sent inside the publishing transaction is delivered at
 * commit: on PostgreSQL to every listening process, on PGlite to this process. Workers
 * also poll, so a lost notification only delays work, never loses it.
 *
 * Channels are database-wide, so each name ends in a tag of the schema: services on two
 * schemas of one database (or test files on one server) do not hear each other. The
 * tag is the first 12 hex digits of the schema name's md5, which keeps every name within
 * PostgreSQL's 63 bytes whatever the schema is called.
 */
export const SCHEMA_TAG_SQL = `left(md5(current_schema()), 12)`;

/**
 * The NOTIFY of due events, as a statement's SQL sends it in the current schema. Its
 * payload, an SQL text expression, names the webhooks whose events became due, comma
 * separated, or is empty: any webhook's may have (see onDue).
 */
export const notifyDueSql = (payload = "''") =>
  `pg_notify('oms_hooks_due_' || ${SCHEMA_TAG_SQL}, ${payload})`;

/** Most webhooks a NOTIFY of due events names; with more, it names none. */
export const MAX_NOTIFIED_WEBHOOKS = 100;

/** A channel's name in the schema `db` works in. */
async function channel(db: Queryable, base: string): Promise<string> {
  const { rows } = await db.query<{ tag: string }>(`select ${SCHEMA_TAG_SQL} as tag`);
  return `${base}_${rows[0]!.tag}`;
}

/** Where due events are announced (see NOTIFY_DUE_SQL). */
export const dueChannel = (db: Queryable) => channel(db, 'oms_hooks_due');

/** Sent by a trigger on `webhooks` when one is updated or deleted; the payload is its id. */
export const webhookChangedChannel = (db: Queryable) => channel(db, 'oms_hooks_webhook_changed');

export async function notifyDue(tx: Queryable): Promise<void> {
  await tx.query(`select ${notifyDueSql()}`);
}

/**
 * Calls `wake` on every NOTIFY of due events, with the webhooks it names, or with
 * undefined when it names none (any webhook's events may be due).
 */
export async function onDue(
  db: Db,
  wake: (webhookIds: number[] | undefined) => void,
): Promise<() => Promise<void>> {
  return db.listen(await dueChannel(db), (payload) => wake(notifiedWebhooks(payload)));
}

/** The webhooks a NOTIFY's payload names; undefined unless it is a list of ids. */
export function notifiedWebhooks(payload: string | undefined): number[] | undefined {
  if (!payload || !/^\d+(,\d+)*$/.test(payload)) return undefined;
  return payload.split(',').map(Number);
}

export async function onWebhookChanged(
  db: Db,
  changed: (webhookId: number) => void,
): Promise<() => Promise<void>> {
  return db.listen(await webhookChangedChannel(db), (payload) => {
    const id = Number(payload);
    if (Number.isInteger(id) && id > 0) changed(id);
  });
}
