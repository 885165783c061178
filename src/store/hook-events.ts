import type { Queryable } from './db.js';
import {
  WEBHOOK_COLUMNS,
  scopeClause,
  webhookJson,
  type Scope,
  type WebhookJson,
  type WebhookRow,
} from './webhooks.js';

/** The API's hook event object, keys in the seed's order. */
export interface HookEventJson {
  id: number;
  webhook: WebhookJson;
  created_date: string;
  modified_date: string;
  uuid: string;
  request_payload: unknown;
  response_content: string | null;
  response_http_status: number | null;
  delivered: boolean;
  request_datetimes: string[];
  retry_count: number | null;
  object_id: unknown;
  content_type: number | null;
}

interface HookEventRow extends WebhookRow {
  id: number;
  created_date: string;
  modified_date: string;
  uuid: string;
  request_payload: unknown;
  response_content: string | null;
  response_http_status: number | null;
  delivered: boolean;
  request_datetimes: string[];
  retry_count: number | null;
  object_id: unknown;
  content_type_id: number | null;
}

/**
 * An event as the API shows it. The payload, in a table of its own (migration 011), is
 * a subquery rather than a join: PostgreSQL evaluates it after the sort and the limit,
 * for the page's rows only, where a join would look up the payload of every row sorted.
 */
const COLUMNS = `e.id, oms_ts(e.created_date) as created_date, oms_ts(e.modified_date) as modified_date,
  e.uuid,
  (select p.request_payload from hook_event_payloads p where p.hook_event_id = e.id)
    as request_payload,
  e.response_content, e.response_http_status, e.delivered,
  array(select oms_ts(t) from unnest(e.request_datetimes) with ordinality as u(t, o) order by o)
    as request_datetimes,
  e.retry_count, e.object_id, e.content_type_id, ${WEBHOOK_COLUMNS}`;

function hookEventJson(row: HookEventRow): HookEventJson {
  return {
    id: row.id,
    webhook: webhookJson(row),
    created_date: row.created_date,
    modified_date: row.modified_date,
    uuid: row.uuid,
    request_payload: row.request_payload,
    response_content: row.response_content,
    response_http_status: row.response_http_status,
    delivered: row.delivered,
    request_datetimes: row.request_datetimes,
    retry_count: row.retry_count,
    object_id: row.object_id,
    content_type: row.content_type_id,
  };
}

export interface HookEventFilters {
  delivered?: boolean;
  webhook?: number;
  event_type?: string;
  object_id?: string;
  content_type?: number;
  uuid?: string;
  response_http_status?: number;
  created_date__gte?: string;
  created_date__lte?: string;
  modified_date__gte?: string;
  modified_date__lte?: string;
  /** Attempted at least once and not delivered: the undelivered list. */
  undelivered?: boolean;
}

export const ORDERING_FIELDS = {
  id: 'e.id',
  created_date: 'e.created_date',
  modified_date: 'e.modified_date',
  retry_count: 'e.retry_count',
  response_http_status: 'e.response_http_status',
} as const;

/**
 * The ordering fields a row may leave null: they sort their nulls last either way. The
 * others are `not null`, and get no NULLS clause. PostgreSQL does not use a column's NOT
 * NULL to match an ORDER BY to an index, so `e.id desc nulls last` could not be read
 * backwards off an index sorted by id: the first page of a webhook's 100,000
 * undelivered events read, built and sorted all of them to return 20 (412-426 ms),
 * where the index answers in about 2 ms.
 */
const NULLABLE_ORDERING: ReadonlySet<keyof typeof ORDERING_FIELDS> = new Set([
  'retry_count',
  'response_http_status',
]);

export type Ordering = { field: keyof typeof ORDERING_FIELDS; desc: boolean }[];

/** Fits an `integer` column; a value outside it matches no row (instead of a SQL error). */
const isInt4 = (v: number): boolean =>
  Number.isInteger(v) && v >= -2_147_483_648 && v <= 2_147_483_647;

function whereClause(scope: Scope, f: HookEventFilters, params: unknown[]): string {
  const parts: string[] = [];
  const add = (sql: (n: string) => string, value: unknown) => {
    params.push(value);
    parts.push(sql(`$${params.length}`));
  };
  const addInt4 = (sql: (n: string) => string, value: number) => {
    if (isInt4(value)) add(sql, value);
    else parts.push('false');
  };
  if (f.delivered !== undefined) add((n) => `e.delivered = ${n}`, f.delivered);
  if (f.webhook !== undefined) addInt4((n) => `e.webhook_id = ${n}`, f.webhook);
  if (f.event_type !== undefined) add((n) => `e.event_type = ${n}`, f.event_type);
  if (f.object_id !== undefined) add((n) => `(e.object_id #>> '{}') = ${n}`, f.object_id);
  if (f.content_type !== undefined) addInt4((n) => `e.content_type_id = ${n}`, f.content_type);
  if (f.uuid !== undefined) add((n) => `e.uuid = ${n}::uuid`, f.uuid);
  if (f.response_http_status !== undefined)
    addInt4((n) => `e.response_http_status = ${n}`, f.response_http_status);
  if (f.created_date__gte !== undefined)
    add((n) => `e.created_date >= ${n}::timestamptz`, f.created_date__gte);
  if (f.created_date__lte !== undefined)
    add((n) => `e.created_date <= ${n}::timestamptz`, f.created_date__lte);
  if (f.modified_date__gte !== undefined)
    add((n) => `e.modified_date >= ${n}::timestamptz`, f.modified_date__gte);
  if (f.modified_date__lte !== undefined)
    add((n) => `e.modified_date <= ${n}::timestamptz`, f.modified_date__lte);
  if (f.undelivered) parts.push('not e.delivered and e.retry_count > 0');
  return `where true${parts.map((p) => ` and ${p}`).join('')}${scopeClause(scope, params)}`;
}

/** The filters hook_event_counts answers (migration 018); `delivered` by subtraction. */
const COUNTED_FILTERS: ReadonlySet<string> = new Set([
  'webhook',
  'event_type',
  'content_type',
  'delivered',
]);

/**
 * How many events a list matches. Filtered at most by webhook, event type and content
 * type, and by `delivered=true`, the count is a sum over hook_event_counts (migration
 * 018), less the undelivered events for `delivered=true`, which the partial index on
 * them counts, both in one statement and so from one snapshot. Any other filter counts
 * the events themselves, as `delivered=false` and the undelivered list do from their
 * partial indexes.
 */
export async function countHookEvents(
  db: Queryable,
  scope: Scope,
  filters: HookEventFilters,
): Promise<number> {
  const params: unknown[] = [];
  const counted =
    filters.delivered !== false &&
    Object.entries(filters).every(([k, v]) => v === undefined || COUNTED_FILTERS.has(k));
  if (!counted) {
    const { rows } = await db.query<{ n: number }>(
      `select count(*)::int as n from hook_events e join webhooks w on w.id = e.webhook_id
       ${whereClause(scope, filters, params)}`,
      params,
    );
    return rows[0]!.n;
  }
  // the totals go by the alias of the events, `e`, so that the same clause filters both
  const keys = {
    webhook: filters.webhook,
    event_type: filters.event_type,
    content_type: filters.content_type,
  };
  const total = `select coalesce(sum(e.n), 0) from hook_event_counts e
    join webhooks w on w.id = e.webhook_id ${whereClause(scope, keys, params)}`;
  const pending =
    filters.delivered === true
      ? ` - (select count(*) from hook_events e join webhooks w on w.id = e.webhook_id
          ${whereClause(scope, { ...keys, delivered: false }, params)})`
      : '';
  const { rows } = await db.query<{ n: number }>(`select ((${total})${pending})::int as n`, params);
  return rows[0]!.n;
}

/**
 * A page of events: first the page's ids, then their rows. PostgreSQL takes a webhook's
 * events to be spread evenly over the ids, so for a webhook with most of them it
 * expects to find a page soon reading the whole table backwards by id, and when its
 * events are not the newest it reads past all the others': with 1,000,000 of one
 * webhook and then 200,000 of another, the first's first page took 20 ms on PostgreSQL
 * and 66 on PGlite. Asked for ids alone, it reads them off the index of the webhook's
 * events without visiting the table (0.1 ms), and fetches the page's 20 rows by id.
 */
export async function listHookEvents(
  db: Queryable,
  scope: Scope,
  filters: HookEventFilters,
  ordering: Ordering,
  limit: number,
  offset: number,
): Promise<HookEventJson[]> {
  const params: unknown[] = [];
  const where = whereClause(scope, filters, params);
  params.push(limit, offset);
  const order = [...ordering, { field: 'id' as const, desc: ordering[0]?.desc ?? true }]
    .map(
      (o) =>
        `${ORDERING_FIELDS[o.field]} ${o.desc ? 'desc' : 'asc'}` +
        (NULLABLE_ORDERING.has(o.field) ? ' nulls last' : ''),
    )
    .join(', ');
  const { rows } = await db.query<HookEventRow>(
    `select ${COLUMNS} from (
       select e.id from hook_events e join webhooks w on w.id = e.webhook_id
       ${where} order by ${order} limit $${params.length - 1} offset $${params.length}
     ) page join hook_events e on e.id = page.id join webhooks w on w.id = e.webhook_id
     order by ${order}`,
    params,
  );
  return rows.map(hookEventJson);
}

export async function getHookEvent(
  db: Queryable,
  scope: Scope,
  id: number,
): Promise<HookEventJson | undefined> {
  // ids are bigint; a pk beyond the safe integers names no event (and would be a SQL error)
  if (!Number.isSafeInteger(id)) return undefined;
  const params: unknown[] = [id];
  const { rows } = await db.query<HookEventRow>(
    `select ${COLUMNS} from hook_events e join webhooks w on w.id = e.webhook_id
     where e.id = $1${scopeClause(scope, params)}`,
    params,
  );
  return rows[0] && hookEventJson(rows[0]);
}

/** An event's id and whether it was delivered, by uuid, within the caller's scope. */
export async function findHookEvent(
  db: Queryable,
  scope: Scope,
  uuid: string,
): Promise<{ id: number; delivered: boolean } | undefined> {
  const params: unknown[] = [uuid];
  const { rows } = await db.query<{ id: number; delivered: boolean }>(
    `select e.id, e.delivered from hook_events e join webhooks w on w.id = e.webhook_id
     where e.uuid = $1::uuid${scopeClause(scope, params)}`,
    params,
  );
  return rows[0];
}
