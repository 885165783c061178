import { isDeliveredStatus } from '../core/delivered.js';
import { parseExact } from '../core/exact-json.js';
import { isInt4, type Queryable } from './db.js';
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
  /** JSON text, parsed here so that its long numbers stay exact. */
  request_payload: string;
  response_content: string | null;
  response_http_status: number | null;
  delivered: boolean;
  request_datetimes: string[];
  retry_count: number | null;
  /** JSON text, as the payload. */
  object_id: string | null;
  content_type_id: number | null;
}

/**
 * An event as the API shows it. The payload, in a table of its own (migration 011), is
 * a subquery rather than a join: PostgreSQL evaluates it after the sort and the limit,
 * for the page's rows only, where a join would look up the payload of every row sorted.
 * The payload and the object's id come as text and are parsed with their long numbers
 * kept (src/core/exact-json.ts), which the API's answers write back as numbers.
 */
const COLUMNS = `e.id, oms_ts(e.created_date) as created_date, oms_ts(e.modified_date) as modified_date,
  e.uuid,
  (select p.request_payload::text from hook_event_payloads p where p.hook_event_id = e.id)
    as request_payload,
  e.response_content, e.response_http_status, e.delivered,
  array(select oms_ts(t) from unnest(e.request_datetimes) with ordinality as u(t, o) order by o)
    as request_datetimes,
  e.retry_count, e.object_id::text as object_id, e.content_type_id, ${WEBHOOK_COLUMNS}`;

function hookEventJson(row: HookEventRow): HookEventJson {
  return {
    id: row.id,
    webhook: webhookJson(row),
    created_date: row.created_date,
    modified_date: row.modified_date,
    uuid: row.uuid,
    request_payload: parseExact(row.request_payload),
    response_content: row.response_content,
    response_http_status: row.response_http_status,
    delivered: row.delivered,
    request_datetimes: row.request_datetimes,
    retry_count: row.retry_count,
    object_id: row.object_id === null ? null : parseExact(row.object_id),
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
  /**
   * Not a filter of the API: events of one attempt, or of none (a page sorted by
   * retry_count, idsByRetries).
   */
  attempts?: 'one' | 'none';
  /**
   * Not a filter of the API: the span of ids within which every event of a
   * `created_date` range lies, that a page's read keeps to (dateRangeRead).
   */
  ids?: IdSpan;
}

/** The lowest and highest id of a span, as bigint text. */
export interface IdSpan {
  lo: string;
  hi: string;
  /**
   * Whether the range's events are at least half of the span's ids, so that a page read
   * by id through the span passes at most twice as many events as the range holds
   * (dateRangeRead).
   */
  dense: boolean;
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

/**
 * Whether every event `f` matches has been attempted and not delivered: the undelivered
 * list, and a status other than 2xx, which only such an event can have (an attempt
 * writes the status and `delivered` together, isDeliveredStatus). Saying so lets
 * PostgreSQL read the partial indexes of those events (migration 006) instead of every
 * event: with 100,000 of a webhook's 1,000,000 events answered 500,
 * `?webhook=&response_http_status=500` counted in 121 ms on PostgreSQL, and the first
 * page of a status no event has read the whole table by id (103 ms).
 */
function attemptedUndelivered(f: HookEventFilters): boolean {
  return f.undelivered === true || failedStatus(f);
}

/** Whether `f` asks for a status other than 2xx (attemptedUndelivered). */
function failedStatus(f: HookEventFilters): boolean {
  const status = f.response_http_status;
  return status !== undefined && !isDeliveredStatus(status);
}

/**
 * Whether `f` asks for a 2xx status other than 200, which only an event delivered with
 * it has: one of those the partial index of migration 026 holds, whose predicate
 * (deliveredOther) the reads of such a status say so that PostgreSQL may read it.
 */
function otherDeliveredStatus(f: HookEventFilters): boolean {
  const status = f.response_http_status;
  return status !== undefined && status !== 200 && isDeliveredStatus(status);
}

/** An event (by its alias) delivered with a status other than 200 (migration 026). */
const deliveredOther = (alias: string): string =>
  `${alias}.delivered and ${alias}.response_http_status <> 200`;

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
  // the range's conditions where no index by date can take them, for a dense span's
  // windows (spanWindows): with the index by date there, PostgreSQL read the whole range
  // off it for each window, as a few dozen events (87 ms for the first, of 1,024 ids)
  const fenced = (c: string) => (f.ids?.dense ? `(${c}) is true` : c);
  if (f.created_date__gte !== undefined)
    add((n) => fenced(`e.created_date >= ${n}::timestamptz`), f.created_date__gte);
  if (f.created_date__lte !== undefined)
    add((n) => fenced(`e.created_date <= ${n}::timestamptz`), f.created_date__lte);
  if (f.modified_date__gte !== undefined)
    add((n) => `e.modified_date >= ${n}::timestamptz`, f.modified_date__gte);
  if (f.modified_date__lte !== undefined)
    add((n) => `e.modified_date <= ${n}::timestamptz`, f.modified_date__lte);
  if (attemptedUndelivered(f)) parts.push('not e.delivered and e.retry_count > 0');
  if (otherDeliveredStatus(f)) parts.push(deliveredOther('e'));
  if (f.attempts !== undefined)
    parts.push(f.attempts === 'one' ? 'e.retry_count = 1' : 'e.retry_count is null');
  if (f.ids) {
    params.push(f.ids.lo, f.ids.hi);
    parts.push(`e.id between $${params.length - 1}::bigint and $${params.length}::bigint`);
  }
  return `where true${parts.map((p) => ` and ${p}`).join('')}${scopeClause(scope, params)}`;
}

/** A subquery counting the events of `f` in `scope`, one by one. */
const countOf = (scope: Scope, f: HookEventFilters, params: unknown[]): string =>
  `select count(*) from hook_events e ${scopeJoin(scope)} ${whereClause(scope, f, params)}`;

/**
 * The most events of a filter with an index of its own (IndexedFilter) that its lists
 * and counts find off that index and check one by one (indexedMatches): 10,000 lookups
 * by id, a few milliseconds.
 */
const INDEXED_ROWS = 10_000;

/**
 * A `modified_date` range's condition on an event `e`, bounded on both sides (by
 * infinity when the filter gives one side): without the table's statistics, which only
 * an ANALYZE gathers, PostgreSQL takes a one-sided range to hold a third of the rows and
 * a two-sided one few, and so reads the latter off the index.
 */
function modifiedRange(f: HookEventFilters, params: unknown[]): string {
  const gte = `$${params.push(f.modified_date__gte ?? '-infinity')}::timestamptz`;
  const lte = `$${params.push(f.modified_date__lte ?? 'infinity')}::timestamptz`;
  return `e.modified_date >= ${gte} and e.modified_date <= ${lte}`;
}

/**
 * A filter whose events are read off an index of its own when they are few: `on`, its
 * condition on an event `e`, which that index serves; `rest`, the other filters, each
 * event found is checked for. Without the table's statistics, which only an ANALYZE
 * gathers and this service never runs, PostgreSQL takes any value of a column to match
 * a share of the events, and reads a page of them off the table backwards by id,
 * expecting one soon:
 *
 * - `object_id` (migration 001's index of its text): an object has a few events, and
 *   read by id its page passed every event of the table (with 1,200,000 stored, 381-414
 *   ms on PostgreSQL and 685-740 on PGlite); with a webhook, or for a user, PostgreSQL
 *   read the webhook's whole index beside the object's (35-37 ms for a webhook of
 *   1,000,000 events).
 * - a `modified_date` range (migration 025): every attempt changes an event's
 *   `modified_date`, so its dates follow neither the ids nor the blocks of migration
 *   022; a client that polls for the events changed since its last call asks for a
 *   range of the newest dates, most often with few events or none, which read by id
 *   passed every event of the table (with 1,110,000, no match: 181-257 ms for the page
 *   and 70-82 for its count on PostgreSQL). With an object as well, the object's index.
 *
 * With a `uuid`, none: its unique index finds its one event, and PostgreSQL knows it.
 */
interface IndexedFilter {
  on: (params: unknown[]) => string;
  rest: HookEventFilters;
}

function indexedFilter(f: HookEventFilters): IndexedFilter | undefined {
  if (f.uuid !== undefined) return undefined;
  const { object_id } = f;
  if (object_id !== undefined)
    return {
      on: (params) => `(e.object_id #>> '{}') = $${params.push(object_id)}`,
      rest: { ...f, object_id: undefined },
    };
  if (f.modified_date__gte !== undefined || f.modified_date__lte !== undefined)
    return {
      on: (params) => modifiedRange(f, params),
      // the range again beside the id, PostgreSQL looked each id up in the range's index
      rest: { ...f, modified_date__gte: undefined, modified_date__lte: undefined },
    };
  return undefined;
}

/**
 * `f`'s IndexedFilter when it has one of at most INDEXED_ROWS events, read off its index
 * that far.
 */
async function fewIndexed(db: Queryable, f: HookEventFilters): Promise<IndexedFilter | undefined> {
  const indexed = indexedFilter(f);
  if (!indexed) return undefined;
  const params: unknown[] = [];
  const { rows } = await db.query<{ few: boolean }>(
    `select ${fewIndexedSql(indexed, params)} as few`,
    params,
  );
  return rows[0]!.few ? indexed : undefined;
}

/**
 * The condition that the rows of `select` (a `select from` one table, off an index)
 * number at most `most`: it reads no more than one past them.
 */
const atMost = (select: string, most: number): string =>
  `(select count(*) from (${select} limit ${most + 1}) m) <= ${most}`;

/** The condition that the events of `indexed` number at most INDEXED_ROWS. */
const fewIndexedSql = (indexed: IndexedFilter, params: unknown[]): string =>
  atMost(`select from hook_events e where ${indexed.on(params)}`, INDEXED_ROWS);

/**
 * The events of `indexed` in `scope` with the columns a page sorts by, as `e`: those of
 * its condition off its index, each looked up by id and checked for the other filters
 * (`offset 0` keeps both apart, so that PostgreSQL cannot join the two to the table read
 * another way).
 */
function indexedMatches(scope: Scope, indexed: IndexedFilter, params: unknown[]): string {
  return `select ${Object.values(ORDERING_FIELDS).join(', ')}
    from (select e.id from hook_events e where ${indexed.on(params)} offset 0) m
    cross join lateral (
      select e.* from hook_events e ${scopeJoin(scope)}
      ${whereClause(scope, indexed.rest, params)} and e.id = m.id offset 0
    ) e`;
}

/** The filters hook_event_counts answers (migration 018), with `delivered` counted apart. */
const COUNTED_FILTERS: ReadonlySet<string> = new Set([
  'webhook',
  'event_type',
  'content_type',
  'delivered',
]);

/**
 * How many events a list matches. Filtered at most by webhook, event type, content type
 * and `delivered`, the count is a sum over hook_event_counts (migration 018), and for
 * `delivered` the undelivered events, which the partial index of them counts: all of
 * them for `delivered=false`, the total less them for `delivered=true`, in one
 * statement and so from one snapshot. A `created_date` range with the same filters but
 * `delivered` sums the blocks of ids it holds whole (dateRangeCount). Any other filter
 * counts the events themselves, as the undelivered list does from its partial index.
 */
export async function countHookEvents(
  db: Queryable,
  scope: Scope,
  filters: HookEventFilters,
): Promise<number> {
  const params: unknown[] = [];
  const only = (names: ReadonlySet<string>) =>
    Object.entries(filters).every(([k, v]) => v === undefined || names.has(k));
  const indexed = indexedFilter(filters);
  if (indexed) {
    // no other count serves an object or `modified_date`: off their index, or one by one
    // (IndexedFilter); more, a range that ends within the span of ids of the blocks its
    // created dates lie in (createdBefore)
    const created = createdBefore(filters);
    const many =
      created === filters ? filters : { ...created, ids: (await rangeBlocks(db, created)).span };
    const { rows } = await db.query<{ n: number }>(
      `select (case when ${fewIndexedSql(indexed, params)}
         then (select count(*) from (${indexedMatches(scope, indexed, params)}) e)
         else (${countOf(scope, many, params)}) end)::int as n`,
      params,
    );
    return rows[0]!.n;
  }
  if (filters.undelivered && filters.event_type !== undefined && only(UNDELIVERED_BY_TYPE)) {
    const { rows } = await db.query<{ n: number }>(
      `select (${undeliveredListCount(scope, filters, params)})::int as n`,
      params,
    );
    return rows[0]!.n;
  }
  const attempted = attemptedUndelivered(filters);
  const failedOnly = filters.response_http_status === undefined || failedStatus(filters);
  if (
    hasDateRange(filters) &&
    only(DATE_RANGE_COUNTED) &&
    failedOnly &&
    !(attempted && filters.delivered)
  ) {
    // with `delivered`, the undelivered list or a failed status, the range's undelivered
    // events are counted, and for `delivered=true` taken from its count, in one
    // statement and so one snapshot; a 2xx status is not among them
    const { delivered, ...range } = filters;
    let sql = '';
    if (delivered !== undefined || attempted)
      sql = `(${rangeUndeliveredCount(scope, range, params)})`;
    if (delivered !== false && !attempted)
      sql = `(${dateRangeCount(scope, range, params)})${sql && ` - ${sql}`}`;
    const { rows } = await db.query<{ n: number }>(`select (${sql})::int as n`, params);
    return rows[0]!.n;
  }
  // a 2xx status is one of the delivered events' (deliveredOtherCount)
  const status = filters.response_http_status;
  const delivered2xx =
    status !== undefined && isDeliveredStatus(status) && filters.delivered !== false;
  if (!only(delivered2xx ? STATUS_COUNTED : COUNTED_FILTERS)) {
    const { rows } = await db.query<{ n: number }>(
      `select (${countOf(scope, filters, params)})::int as n`,
      params,
    );
    return rows[0]!.n;
  }
  // the totals go by the alias of the events, `e`, so that the same clause filters both
  const keys = countedKeys(filters);
  let sql: string;
  if (delivered2xx && status !== 200) sql = deliveredOtherCount(scope, keys, status, params);
  else if (filters.delivered === false) sql = undeliveredCount(scope, keys, params);
  else {
    sql = `(select coalesce(sum(e.n), 0) from hook_event_counts e
      ${scopeJoin(scope)} ${whereClause(scope, keys, params)})`;
    if (filters.delivered === true || delivered2xx)
      sql += ` - ${undeliveredCount(scope, keys, params)}`;
    if (delivered2xx) sql += ` - ${deliveredOtherCount(scope, keys, undefined, params)}`;
  }
  const { rows } = await db.query<{ n: number }>(`select (${sql})::int as n`, params);
  return rows[0]!.n;
}

/**
 * The filters a count of a 2xx status answers from the totals: the delivered events of
 * the keys, less those delivered with another 2xx (deliveredOtherCount); the events of
 * another 2xx are read off the index of those alone.
 */
const STATUS_COUNTED: ReadonlySet<string> = new Set([...COUNTED_FILTERS, 'response_http_status']);

/** Whether `f` filters on `created_date`. */
const hasDateRange = (f: HookEventFilters): boolean =>
  f.created_date__gte !== undefined || f.created_date__lte !== undefined;

/** The filters a count of a `created_date` range reads off the summaries of blocks of ids. */
const DATE_RANGE_FILTERS: ReadonlySet<string> = new Set([
  'created_date__gte',
  'created_date__lte',
  'webhook',
  'event_type',
  'content_type',
]);

/**
 * The filters a count of a `created_date` range answers without counting every match:
 * with `delivered`, the list of undelivered events or a status, its undelivered events
 * (rangeUndeliveredCount).
 */
const DATE_RANGE_COUNTED: ReadonlySet<string> = new Set([
  ...DATE_RANGE_FILTERS,
  'delivered',
  'undelivered',
  'response_http_status',
]);

/**
 * How many events a `created_date` range holds (with a webhook, an event type or a
 * content type, in any scope), off the summaries of the events by block of ids: a block
 * whose dates all lie in the range (hook_event_blocks, migration 022) counts as its
 * number of events, or for a user or a key as the sum of its rows of
 * hook_event_key_blocks (migration 023) for them; one whose dates meet the range only
 * in part has its events read by id and counted, 4,096 at most apiece. The blocks'
 * rows are written by the same statements as the events, so one statement's snapshot
 * sees both alike. The index by date counted the newer half of 1,797,887 events in
 * 94-118 ms on PostgreSQL, reading all 900,000 entries; a user's newer half of
 * 1,110,000, 203-397 ms, looking each up for its webhook.
 */
function dateRangeCount(scope: Scope, filters: HookEventFilters, params: unknown[]): string {
  const { meets, within, events } = blockRange(filters, params);
  const keys = countedKeys(filters);
  let whole: string;
  if (scope.isAdmin && Object.values(keys).every((v) => v === undefined))
    whole = `select coalesce(sum(b.n), 0) from b where ${within}`;
  else if (scope.isAdmin && keys.webhook === undefined)
    // each block's rows of the type or content type off the index by block (migration
    // 024), block by block: read as one, PostgreSQL read the whole table when it took it
    // to be small, as it does before the table's first ANALYZE
    whole = `select coalesce(sum(k.n), 0) from b cross join lateral (
        select sum(e.n) as n from hook_event_key_blocks e
        ${whereClause(ADMIN, keys, params)} and e.block = b.block
      ) k where ${within}`;
  // the block's rows of its webhooks read off the index by webhook and block
  else
    whole = `select coalesce(sum(e.n), 0) from hook_event_key_blocks e ${scopeJoin(scope)}
      ${whereClause(scope, keys, params)} and e.block in (select b.block from b where ${within})`;
  return `with ${blocksMeeting(meets)}
    select (${whole})
      + (select coalesce(sum((
           select count(*) from (
             select e.created_date, e.webhook_id, e.event_type, e.content_type_id
             from hook_events e
             where e.id between b.block * ${BLOCK_IDS} and b.block * ${BLOCK_IDS} + ${BLOCK_IDS - 1}
             offset 0
           ) e ${scopeJoin(scope)} ${whereClause(scope, keys, params)} and ${events}
         )), 0) from b where not (${within}))`;
}

/**
 * The CTE `b` of the blocks of hook_event_blocks (migration 022) whose dates meet a
 * range (blockRange), a block's rows not yet folded summed first. Rows of deletes have
 * no dates.
 */
const blocksMeeting = (meets: string): string => `b as materialized (
    select * from (
      select block, sum(n) as n, min(oldest) as oldest, max(newest) as newest
      from hook_event_blocks group by block
    ) b where ${meets}
  )`;

/**
 * How many undelivered events a `created_date` range holds (with a webhook, an event
 * type or a content type, in any scope), read off the partial index of each webhook's
 * undelivered events (migration 006) within the ids of the range's blocks: those of the
 * blocks it holds whole, runs of consecutive blocks, from the index alone for a webhook
 * all of whose events match the type and content type (as hook_event_counts has them);
 * those of the blocks at its edges, and the other webhooks', read and checked. So it
 * costs the undelivered events of the range, not all of them, nor every event of the
 * range, which a count of `delivered=true` subtracts this from (dateRangeCount). Past
 * PER_WEBHOOK_MAX webhooks in the scope (without a webhook) it counts the events in one
 * pass, as before.
 *
 * With `undelivered` or a failed status (`f` may hold those), the events attempted and
 * not delivered: without a type or a content type, every webhook's at once off their
 * index by id, which holds each one's webhook and status (migration 020); with a type,
 * webhook by webhook off their index by type, from the index alone in the blocks held
 * whole.
 *
 * With 1,110,000 events, one in ten undelivered, the newer half's 55,566 counted in
 * 85-87 ms on PostgreSQL, read off that index for every undelivered event, and its
 * 500,035 delivered in 51-68 off the index by date; now 5.6-8.4 and 6.7-10.0. The
 * undelivered list's 50,008, 50-74 ms, now 4.5-7.4.
 */
function rangeUndeliveredCount(scope: Scope, f: HookEventFilters, params: unknown[]): string {
  const keys = countedKeys(f);
  const { meets, within, events } = blockRange(f, params);
  // the undelivered list and a failed status: attempted, read off their own indexes
  const attempted = attemptedUndelivered(f);
  const failed = { undelivered: f.undelivered, response_http_status: f.response_http_status };
  const blocks = `with ${blocksMeeting(meets)},
    s as materialized (
      select min(r.block) * ${BLOCK_IDS} as lo, max(r.block) * ${BLOCK_IDS} + ${BLOCK_IDS - 1} as hi,
             true as whole
      from (select b.block, b.block - row_number() over (order by b.block) as run
            from b where ${within}) r group by r.run
      union all
      select b.block * ${BLOCK_IDS}, b.block * ${BLOCK_IDS} + ${BLOCK_IDS - 1}, false
      from b where not (${within})
    )`;
  if (attempted && f.event_type === undefined && f.content_type === undefined) {
    // every webhook's at once off the index of them by id (migration 020), which holds
    // their webhook and status, checked for the range in the blocks at its edges alone
    const spanCount = (checked: boolean) => `select coalesce(sum(c.n), 0) from s
      cross join lateral (
        select count(*) as n from hook_events e ${scopeJoin(scope)}
        ${whereClause(scope, { ...failed, webhook: f.webhook }, params)}
          and e.id between s.lo and s.hi${checked ? ` and ${events}` : ''}
      ) c where ${checked ? 'not ' : ''}s.whole`;
    return `${blocks} select (${spanCount(false)}) + (${spanCount(true)})`;
  }
  // each webhook's undelivered events in a span of ids, within its own matches' span;
  // checked for the range and the keys, or not, from the index alone: a webhook's
  // matching whole, or for the undelivered list and a failed status, whose index by
  // type holds the type, of a type alone (migration 020)
  const indexed = attempted ? { ...failed, event_type: f.event_type } : {};
  const whole = attempted && f.content_type === undefined ? 's.whole' : 's.whole and t.pure';
  const undelivered = (on: string, checked: boolean) => `select coalesce(sum(c.n), 0)
    from t join s on ${on} cross join lateral (
      select count(*) as n from hook_events e
      ${whereClause(ADMIN, checked ? { ...keyFilters(f), ...failed } : indexed, params)}
        and e.webhook_id = t.webhook_id and not e.delivered
        and e.id between greatest(s.lo, t.oldest) and least(s.hi, t.newest)${checked ? ` and ${events}` : ''}
    ) c`;
  const plain = countOf(scope, { ...f, delivered: false }, params);
  return `${blocks}, ${matchingWebhooks(scope, keys, params)}
    select case when ${f.webhook === undefined ? `(${manyWebhooks(keys, params, scope)})` : 'false'}
      then (${plain}) else
      (${undelivered(whole, false)}) + (${undelivered(`not (${whole})`, true)})
    end`;
}

/**
 * A `created_date` range's conditions on a block of hook_event_blocks `b` (migration
 * 022): that its dates meet the range, that they lie within it, and the range's on an
 * event `e`. A block's rows of deletes have no dates, and so meet no range.
 */
function blockRange(
  { created_date__gte: gte, created_date__lte: lte }: HookEventFilters,
  params: unknown[],
): { meets: string; within: string; events: string } {
  const [meets, within, events]: [string[], string[], string[]] = [[], [], []];
  if (gte !== undefined) {
    const p = `$${params.push(gte)}::timestamptz`;
    meets.push(`b.newest >= ${p}`);
    within.push(`b.oldest >= ${p}`);
    events.push(`e.created_date >= ${p}`);
  }
  if (lte !== undefined) {
    const p = `$${params.push(lte)}::timestamptz`;
    meets.push(`b.oldest <= ${p}`);
    within.push(`b.newest <= ${p}`);
    events.push(`e.created_date <= ${p}`);
  }
  const and = (c: string[]) => c.join(' and ') || 'true';
  return { meets: and(meets), within: and(within), events: and(events) };
}

/**
 * The join of the events (or their totals) to their webhooks that a user's scope needs,
 * and an admin's not: every event has its webhook (migration 012 refuses an event
 * without one, and a webhook's deletion takes its events, whose totals then sum to
 * nothing). Without it, an admin's count
 * of a `created_date` range with another filter reads the index by date alone, where the
 * join looked each event up for its webhook: the newer half of 1,110,000 counted in
 * 134-167 ms on PostgreSQL, 52-69 so (a range alone, since, off the blocks of ids).
 */
const scopeJoin = (scope: Scope): string =>
  scope.isAdmin ? '' : 'join webhooks w on w.id = e.webhook_id';

/** Every event: conditions on the events alone, and the webhooks' scope applied apart. */
const ADMIN: Scope = { userId: 0, isAdmin: true };

/** The filters that pick keys of hook_event_counts without naming a webhook. */
const keyFilters = (f: HookEventFilters) => ({
  event_type: f.event_type,
  content_type: f.content_type,
});

/** The filters of `f` that are columns of hook_event_counts. */
const countedKeys = (f: HookEventFilters) => ({ ...keyFilters(f), webhook: f.webhook });

/** Whether a page is sorted by id alone, the order the special reads below serve. */
const byIdOnly = (ordering: Ordering): boolean => ordering.every((o) => o.field === 'id');

/**
 * A query of the webhooks in `scope` (and `webhook`, when given) with events of the
 * event type and content type of `f`, from hook_event_counts: `webhook_id`, how many of
 * its events match, `matching`, and the lowest and highest ids they may have, `oldest`
 * and `newest` (migration 019; the whole span of ids if no row of the key kept them). It
 * reads the table of totals through (one row per key once folded).
 */
function webhooksMatching(scope: Scope, f: HookEventFilters, params: unknown[]): string {
  const where = whereClause(scope, countedKeys(f), params);
  // a deleted webhook's totals sum to nothing; the webhooks are read for a user's scope
  return `select e.webhook_id, sum(e.n) as matching,
      coalesce(min(e.min_id), -9223372036854775808) as oldest,
      coalesce(max(e.max_id), 9223372036854775807) as newest from hook_event_counts e
    ${scopeJoin(scope)} ${where}
    group by e.webhook_id having sum(e.n) > 0`;
}

/** The events in all of the webhook of a row `m` of webhooksMatching, off the totals' index. */
const TOTAL_OF_M = `(select sum(c.n) from hook_event_counts c where c.webhook_id = m.webhook_id)`;

/**
 * The CTEs `m`, webhooksMatching's rows, and `t`, each of those webhooks with the span
 * of its matches' ids and whether all its events match (`pure`), so that its
 * undelivered events need not be checked for the keys.
 */
const matchingWebhooks = (scope: Scope, keys: HookEventFilters, params: unknown[]): string =>
  `m as materialized (${webhooksMatching(scope, keys, params)}),
   t as materialized (
     select m.webhook_id, m.oldest, m.newest, m.matching = ${TOTAL_OF_M} as pure from m
   )`;

/**
 * The most webhooks with events of a type that its reads go through one by one. Going
 * webhook by webhook costs lookups of each webhook's own, and finding them costs a pass
 * over their totals: with 20,000 webhooks of a type, 10-20 ms on PostgreSQL and 20-30
 * on PGlite before reading an event. Past this many rows of totals of the type (one per
 * webhook and content type once folded), its reads are those of any other filter.
 */
export const PER_WEBHOOK_MAX = 1000;

/**
 * The rows a page read webhook by webhook may cost before the cost of reading the table
 * by id, which may be far off, is weighed against it (readsPerWebhook): 2,000 lookups by
 * id, a few milliseconds.
 */
const PER_WEBHOOK_ROWS = 2000;

/**
 * A query whose one row, `many`, says whether hook_event_counts holds more than
 * PER_WEBHOOK_MAX rows of the event type of `f`. It stops reading at the first row past
 * them.
 */
function manyWebhooks(f: HookEventFilters, params: unknown[], scope: Scope = ADMIN): string {
  return `select count(*) > ${PER_WEBHOOK_MAX} as many from (
      select from hook_event_counts e ${scopeJoin(scope)}
      ${whereClause(scope, keyFilters(f), params)} limit ${PER_WEBHOOK_MAX + 1}) r`;
}

/**
 * The subquery that counts the undelivered events of `keys`. Filtered by an event type,
 * it counts the undelivered events of each webhook all of whose events match (as
 * hook_event_counts has them) off the index of its undelivered events alone, without
 * reading the events for their type: a webhook subscribed to one type, the usual kind.
 * Only the other webhooks' are read and checked. With 100,000 undelivered of 1,100,000
 * events, `?event_type=&delivered=false` counted in 143-181 ms on PostgreSQL, checking
 * the type of each, 8 ms so. Past PER_WEBHOOK_MAX webhooks it checks each event's type
 * (with 20,000 webhooks of the type holding one undelivered event each, going webhook
 * by webhook took 83 ms against 13).
 */
const undeliveredCount = (scope: Scope, keys: HookEventFilters, params: unknown[]): string =>
  partialCount(scope, keys, 'not e.delivered', params);

/**
 * The subquery that counts the events of `keys` in `scope` of which `also` holds (SQL on
 * `e`), the predicate of a partial index of hook_events by webhook: undeliveredCount's,
 * and deliveredOtherCount's. For an event type, webhook by webhook as undeliveredCount
 * says.
 */
function partialCount(
  scope: Scope,
  keys: HookEventFilters,
  also: string,
  params: unknown[],
): string {
  const partial = (f: HookEventFilters) => `${countOf(scope, f, params)} and ${also}`;
  if (keys.event_type === undefined) return `(${partial(keys)})`;
  // the CTEs are read only by the branch taken; webhook by webhook, so that a key with
  // no webhooks reads nothing: as one pass kept to a set of them, PostgreSQL read a
  // webhook's 100,000 undelivered events before it found the set empty (64-140 ms)
  return `(with ${matchingWebhooks(scope, keys, params)}
    select case when (${manyWebhooks(keys, params)}) then (${partial(keys)})
      else (select coalesce(sum(c.count), 0) from t cross join lateral (
              ${partial({ webhook: keys.webhook })} and e.webhook_id = t.webhook_id) c
            where t.pure)
         + (select coalesce(sum(c.count), 0) from t cross join lateral (
              ${partial(keys)} and e.webhook_id = t.webhook_id) c
            where not t.pure)
      end)`;
}

/**
 * The subquery that counts the events of `keys` delivered with a 2xx status other than
 * 200, or with `status` (one of those), off the partial index of them (migration 026).
 */
function deliveredOtherCount(
  scope: Scope,
  keys: HookEventFilters,
  status: number | undefined,
  params: unknown[],
): string {
  let also = deliveredOther('e');
  if (status !== undefined) also += ` and e.response_http_status = $${params.push(status)}`;
  return partialCount(scope, keys, also, params);
}

/** The filters undeliveredListCount answers. */
const UNDELIVERED_BY_TYPE: ReadonlySet<string> = new Set(['undelivered', 'event_type', 'webhook']);

/**
 * The subquery that counts the undelivered list of an event type (and a webhook): for
 * each webhook with events of the type, off the partial index of the list by type and
 * webhook (migration 006) alone. Counted in one pass over the list, PostgreSQL read the
 * list's index by id and each event for its type, taking the table's order by id to make
 * that cheap: 100,000 of a type took 110-125 ms on PostgreSQL, 26 off the index by type
 * alone, 212 on PGlite. Past PER_WEBHOOK_MAX webhooks of the type it counts in one pass.
 */
function undeliveredListCount(scope: Scope, f: HookEventFilters, params: unknown[]): string {
  const plain = countOf(scope, f, params);
  params.push(f.event_type);
  const type = `$${params.length}`;
  return `case when (${manyWebhooks(f, params)}) then (${plain}) else (
      select coalesce(sum(u.n), 0) from (${webhooksMatching(scope, f, params)}) m
      cross join lateral (
        select count(*) as n from hook_events e
        where e.event_type = ${type} and e.webhook_id = m.webhook_id
          and not e.delivered and e.retry_count > 0
      ) u) end`;
}

/**
 * The filters a page read webhook by webhook serves (readsPerWebhook): not `object_id`
 * or `uuid`, whose own indexes find their few events at once. Read webhook by webhook,
 * each event of the type looked up for them, `?event_type=&object_id=` of a type of
 * 1,085,668 events among 1,110,000, with no match, took 1.7 s on PostgreSQL, and with
 * `uuid` 2.5 s.
 */
const PER_WEBHOOK_FILTERS: ReadonlySet<string> = new Set([
  'attempts',
  'event_type',
  'content_type',
  'delivered',
  'undelivered',
  'response_http_status',
  'created_date__gte',
  'created_date__lte',
  'modified_date__gte',
  'modified_date__lte',
  'ids',
]);

/**
 * Whether a page of `wanted` rows (its offset and limit), in id order, is read for less
 * by reading each matching webhook's events off its own index than by reading the whole
 * table by id: only without a webhook, for an event type or a content type, which no
 * index of the events serves on its own, or a user's events (userReadsPerWebhook), and
 * for at most PER_WEBHOOK_MAX webhooks. hook_event_counts tells
 * how many events match, in all and per webhook, so that either read can be costed as
 * the rows it would pass before it has `wanted` matches, taking the matches to be
 * spread evenly: the span of the table's ids times wanted / matches, against the sum of
 * the same for each webhook with matches. A type with 10,000 events among 1,010,000
 * costs 2,020 rows one way and 20 the other; a type most events are of, one way about
 * `wanted` and the other `wanted` for each of its webhooks.
 *
 * Only the second is sure: a webhook all of whose events are of the type gives exactly
 * `wanted` of its own, where matches that are all older than the others' leave the
 * first to read every newer event. A fifth of 1,800,000 events of one type, all older
 * than the rest, took 282 ms p50 to list read by id, costed at 100 rows. So up to
 * PER_WEBHOOK_ROWS rows, the webhooks are read one by one whatever the other way costs.
 */
async function readsPerWebhook(
  db: Queryable,
  scope: Scope,
  filters: HookEventFilters,
  ordering: Ordering,
  wanted: number,
): Promise<boolean> {
  if (filters.webhook !== undefined || !byIdOnly(ordering)) return false;
  if (!Object.entries(filters).every(([k, v]) => v === undefined || PER_WEBHOOK_FILTERS.has(k)))
    return false;
  // an event type or a content type, which no index serves alone, or a user's webhooks
  if (filters.event_type === undefined && filters.content_type === undefined)
    return !scope.isAdmin && (await userReadsPerWebhook(db, scope, ordering, wanted, filters.ids));
  const params: unknown[] = [wanted];
  // first what the matches alone tell: each webhook passes at least as many rows as it
  // has matches for the page (`least`), and most webhooks with matches settle it so
  const { rows } = await db.query<{ many: boolean; least: number; matching: number; all: number }>(
    `with many as materialized (${manyWebhooks(filters, params, scope)})
     select (select many from many),
            coalesce(sum(least(m.matching, $1)), 0)::float8 as least,
            coalesce(sum(m.matching), 0)::float8 as matching,
            (select coalesce(max(id) - min(id) + 1, 0) from hook_events)::float8 as all
     from (${webhooksMatching(scope, filters, params)}) m where not (select many from many)`,
    params,
  );
  const { many, least, matching, all } = rows[0]!;
  if (many) return false;
  // with no match anywhere, the page is empty whichever way, and read so at once
  if (matching === 0) return true;
  const whole = Math.max(PER_WEBHOOK_ROWS, Math.min(all, (wanted * all) / matching));
  if (least >= whole) return false;
  const totals: unknown[] = [wanted];
  const { rows: per } = await db.query<{ rows: number }>(
    `select sum(least(t.total, $1 * t.total / t.matching))::float8 as rows
     from (select m.matching, ${TOTAL_OF_M} as total
           from (${webhooksMatching(scope, filters, totals)}) m) t`,
    totals,
  );
  return per[0]!.rows < whole;
}

/**
 * Whether a user's page with no type or content type is read webhook by webhook
 * (readsPerWebhook). Read by id, it passes the ids past the newest of their events (the
 * oldest, read up), which hook_event_counts bounds, then the others' events among
 * theirs; a user whose webhooks fell quiet has every newer event passed first (1,000
 * events before 1,110,000 others': 470-625 ms on PostgreSQL and 0.8-1.1 s on PGlite).
 * When that is a few milliseconds (PER_WEBHOOK_ROWS), it is read so: webhook by webhook
 * costs more to plan and run, 2-10 ms more on PostgreSQL and about 13 on PGlite for a
 * user with 5% of 1,110,000 events mixed with the others'. One read of the user's
 * totals, without the grouping by webhook a type needs.
 */
async function userReadsPerWebhook(
  db: Queryable,
  scope: Scope,
  ordering: Ordering,
  wanted: number,
  span?: IdSpan,
): Promise<boolean> {
  const params: unknown[] = [];
  const past =
    (ordering[0]?.desc ?? true)
      ? '(select max(id) from hook_events) - max(e.max_id)'
      : 'min(e.min_id) - (select min(id) from hook_events)';
  const { rows } = await db.query<{
    keys: number;
    matching: number;
    all: number;
    past: number;
    apart: boolean | null;
  }>(
    `select count(*)::float8 as keys, coalesce(sum(e.n), 0)::float8 as matching,
            (select coalesce(max(id) - min(id) + 1, 0) from hook_events)::float8 as all,
            coalesce(greatest(${past}, 0), 0)::float8 as past,
            max(e.max_id) < $${params.push(span?.lo)}::bigint
              or min(e.min_id) > $${params.push(span?.hi)}::bigint as apart
     from hook_event_counts e ${scopeJoin(scope)} ${whereClause(scope, {}, params)}`,
    params,
  );
  const { keys, matching, all, past: passed, apart } = rows[0]!;
  if (keys > PER_WEBHOOK_MAX) return false;
  // no events, or none in a range's span: the page is empty whichever way, and read so
  // at once (read through the span, 257-274 ms for 800,000 ids with statistics)
  if (matching === 0 || apart === true) return true;
  return passed + Math.min(all, (wanted * all) / matching) > PER_WEBHOOK_ROWS;
}

/**
 * The most events of a `created_date` range whose page is read off the index by date and
 * sorted (dateRangeRead): 5,000 took 3.2-3.5 ms on PostgreSQL and 4.9 on PGlite, and
 * 50,000 would take 66 on PostgreSQL.
 */
const DATE_RANGE_ROWS = 10_000;

/** The ids a row of hook_event_blocks summarises (migration 022): `id >> 12`. */
const BLOCK_IDS = 4_096;

/**
 * How a page by id of a `created_date` range is read, where PostgreSQL, which takes the
 * range's events to be spread evenly over the ids, would read the table backwards by id
 * expecting a page soon, and pass every event created after the range first. One read
 * of the summaries of the events by block of ids (migration 022), whose dates meet the
 * range, gives an upper bound on its events and the span of ids they lie in:
 *
 * - `sorted`: a range of at most DATE_RANGE_ROWS events is read off the index by date
 *   and sorted. The oldest 5,000 of 1,110,000 took 196 ms on PostgreSQL and 380 on
 *   PGlite by id; with an event type, read webhook by webhook from each one's newest
 *   event of it, 1.5 s, 3.6-5.5 ms so. Sorting more costs more than the other way can
 *   (50,000 in the middle: 66 ms sorted, 58-71 by id).
 * - a span of ids otherwise, which the page keeps to: the blocks' ids, which hold every
 *   event of the range and those of its edge blocks that are not. The ids follow the
 *   dates closely but not exactly (a write takes its date from its API process's clock
 *   and its ids as it runs, so two writes in flight, or two API processes, may take them
 *   in either order), so the span is read, not guessed; a clock that is off widens it.
 * - and whether the span is `dense`: its blocks' events, a bound on the range's, at least
 *   half its ids. Then the page is read by id through the span, from the end it starts
 *   at: a webhook's off the webhook's own index (readsOwnWebhook), an undelivered one's
 *   off the index of those (listHookEvents), any other window by window (spanWindows).
 *   It passes at most twice the range's events, and about the page when the other
 *   filters match throughout. Without statistics PostgreSQL takes a range with both ends
 *   to hold 0.5% of the events, and read all of them off the index by date and sorted
 *   them: with 1,000,000 events of one webhook and then 200,000 of another, 800,000 of
 *   the first's took 144 ms on PostgreSQL and 279 on PGlite, with its webhook 286 and
 *   421, 3-12 ms so. With statistics, the other webhook's page (it has none in the
 *   range) took 282 ms, 1.9 so. A span that is not dense holds a block whose dates are
 *   far from its ids' (an event's `created_date` changed by hand): reading it by id could
 *   pass every newer event, and it is read as PostgreSQL chooses.
 *
 * Its blocks' rows are at most one per 4,096 events stored and a few per heartbeat
 * since the last fold. It is decided before a type's read webhook by webhook
 * (readsPerWebhook), which a span bounds too.
 */
async function dateRangeRead(
  db: Queryable,
  filters: HookEventFilters,
  ordering: Ordering,
): Promise<'sorted' | IdSpan | undefined> {
  if (!hasDateRange(filters) || !byIdOnly(ordering)) return undefined;
  const { n, span } = await rangeBlocks(db, filters);
  return n === undefined || n > DATE_RANGE_ROWS ? span : 'sorted';
}

/**
 * The span of ids of the blocks (migration 022) a `created_date` range meets, and how
 * many events those hold, a bound on the range's; none, when no block meets it, in a
 * span with no id.
 */
async function rangeBlocks(
  db: Queryable,
  filters: HookEventFilters,
): Promise<{ n?: number; span: IdSpan }> {
  const params: unknown[] = [];
  // the rows of deleted events meet no range, so the sum stays a bound
  const { rows } = await db.query<{
    n: number | null;
    lo: string | null;
    hi: string | null;
    dense: boolean | null;
  }>(
    `select sum(b.n)::float8 as n, (min(b.block) * ${BLOCK_IDS})::text as lo,
            (max(b.block) * ${BLOCK_IDS} + ${BLOCK_IDS - 1})::text as hi,
            sum(b.n) * 2 >= (max(b.block) - min(b.block) + 1) * ${BLOCK_IDS} as dense
     from hook_event_blocks b where ${blockRange(filters, params).meets}`,
    params,
  );
  const { n, lo, hi, dense } = rows[0]!;
  if (lo === null || hi === null) return { span: { lo: '1', hi: '0', dense: false } };
  return { n: n ?? 0, span: { lo, hi, dense: dense === true } };
}

/** The first ids of a window read by spanWindows: enough for most pages of 20. */
const FIRST_WINDOW = 1_024;

/**
 * The ids of the first `wanted` events of `f` in `scope`, by id, through the dense span
 * of its `created_date` range (dateRangeRead): a window of FIRST_WINDOW ids from the
 * span's end the page starts from, then each window twice the last, until `wanted` are
 * found or the span ends. Each statement reads at most its window, however PostgreSQL
 * plans it; as one statement through the whole span, PostgreSQL took the range and
 * another filter (`response_http_status=200`) to match a few events and read the
 * span's 800,000 events whole, then sorted them (251 ms, where the windows took 3.6).
 * A span none of whose events match is read through in ten windows for 800,000 ids
 * (118-135 ms; 217-229 read off the index by date).
 */
async function spanWindows(
  db: Queryable,
  scope: Scope,
  f: HookEventFilters,
  span: IdSpan,
  desc: boolean,
  wanted: number,
): Promise<string[]> {
  const [lo, hi] = [BigInt(span.lo), BigInt(span.hi)];
  const found: string[] = [];
  let size = BigInt(FIRST_WINDOW);
  for (let edge = desc ? hi : lo; desc ? edge >= lo : edge <= hi; size *= 2n) {
    const far = desc ? edge - size + 1n : edge + size - 1n;
    const window: IdSpan = desc
      ? { lo: String(far < lo ? lo : far), hi: String(edge), dense: true }
      : { lo: String(edge), hi: String(far > hi ? hi : far), dense: true };
    const params: unknown[] = [];
    const { rows } = await db.query<{ id: string }>(
      `select e.id::text as id from hook_events e ${scopeJoin(scope)}
       ${whereClause(scope, { ...f, ids: window }, params)}
       order by e.id ${desc ? 'desc' : 'asc'} limit $${params.push(wanted - found.length)}`,
      params,
    );
    found.push(...rows.map((r) => r.id));
    if (found.length >= wanted) break;
    edge = desc ? far - 1n : far + 1n;
  }
  return found;
}

/**
 * For a page sorted by `created_date`, the dates the events of `f`'s webhooks lie
 * within: those of the blocks of ids (migration 022) their ids lie within, as
 * hook_event_counts keeps them (webhooksMatching). PostgreSQL reads such a page off the
 * index by date, checking each event, and takes a webhook's (or a type's, or a user's)
 * to be spread evenly over the dates; when they are not, it read past every event of
 * the others between the end it starts from and the first of theirs: with 1,000,000
 * events of one webhook and then 200,000 of another, the second's oldest first took
 * 158 ms on PostgreSQL. The span is a bound, not a filter: an event's block holds its
 * date (a change of `created_date` writes a row of its new one), and a block's rows of
 * deletes have no dates. None for an admin's page of every webhook. `with` names the
 * span `d`, read once; `on` is its condition on an event `e`'s `field`.
 *
 * A `modified_date` is never before its event's `created_date` (migration 028), so the
 * span's oldest date bounds a page sorted by `modified_date`, oldest first, as well (the
 * second webhook's took 202 ms). Not newest first: an attempt may come any time after.
 */
function createdSpan(
  scope: Scope,
  f: HookEventFilters,
  desc: boolean,
  params: unknown[],
  field: 'created_date' | 'modified_date' = 'created_date',
): { with: string; on: string } | undefined {
  if (field === 'modified_date' && desc) return undefined;
  const keys = countedKeys(f);
  if (scope.isAdmin && Object.values(keys).every((v) => v === undefined)) return undefined;
  // a block is `id >> 12` (BLOCK_IDS); no matching webhook, no block: null dates, no event
  return {
    with: `with d as materialized (
        select min(b.oldest) as oldest, max(b.newest) as newest
        from (select min(k.oldest) as lo, max(k.newest) as hi
              from (${webhooksMatching(scope, f, params)}) k) k
        join hook_event_blocks b on b.block between (k.lo >> 12) and (k.hi >> 12)
      )`,
    // the edge the page starts from alone: a subquery PostgreSQL estimates as a third of
    // the events, so that it reads the index by date from there as before; with both,
    // it took them for few, and read the webhook's whole index beside the span's
    on: desc ? `e.${field} <= (select d.newest from d)` : `e.${field} >= (select d.oldest from d)`,
  };
}

/**
 * Whether a page by id of `f`, a 2xx status other than 200 without a webhook, is read
 * off the index of those events (migration 026) and sorted: when at most
 * DATE_RANGE_ROWS events have it, counted off that index that far, as a date range's
 * are (dateRangeRead). Without the table's statistics, which only an ANALYZE gathers
 * and this service never runs, PostgreSQL takes any status to match a share of the
 * events and reads the table backwards by id for the page: with 1,110,000 events and
 * none answered 201, `?response_http_status=201` took 249 ms on PostgreSQL and 361 on
 * PGlite. A webhook's, or a type's, is read off the same index webhook by webhook
 * (listHookEvents).
 */
async function fewOfStatus(
  db: Queryable,
  f: HookEventFilters,
  ordering: Ordering,
): Promise<boolean> {
  if (!otherDeliveredStatus(f) || f.webhook !== undefined || !byIdOnly(ordering)) return false;
  const of = `select from hook_events e
    where ${deliveredOther('e')} and e.response_http_status = $1`;
  const { rows } = await db.query<{ few: boolean }>(
    `select ${atMost(of, DATE_RANGE_ROWS)} as few`,
    [f.response_http_status],
  );
  return rows[0]!.few;
}

/** The filters a webhook's own events are read for one by one (readsOwnWebhook). */
const OWN_FILTERS: ReadonlySet<string> = new Set([
  'attempts',
  'webhook',
  'delivered',
  'undelivered',
  'event_type',
  'content_type',
  'response_http_status',
  'created_date__gte',
  'created_date__lte',
  'ids',
]);

/**
 * Whether a webhook's page, filtered further, is read off the webhook's own index and
 * each event then checked, rather than as PostgreSQL would choose. It takes a webhook's
 * events to be spread evenly over the ids and, for one holding most of them, reads the
 * table backwards by id: when they are not the newest, past every newer event of the
 * others (with 1,000,000 of one webhook and then 200,000 of another,
 * `?webhook=&delivered=true` took 20 ms on PostgreSQL and 70 on PGlite). Only by id,
 * and for the filters that no index of their own would serve better: `object_id`,
 * `uuid` and `created_date` have theirs, which a range's serves only when its span of
 * ids is not dense (dateRangeRead). The read keeps to the ids hook_event_counts gives
 * for the webhook's events of the type and content type asked for (and to a range's
 * span), and reads nothing when it has none (read through, 1,000,000 events of another
 * type took 1.1 s on PostgreSQL and 2.1 s on PGlite to find that none matched).
 */
function readsOwnWebhook(filters: HookEventFilters, ordering: Ordering): boolean {
  const { webhook } = filters;
  if (webhook === undefined || !isInt4(webhook)) return false;
  if (!byIdOnly(ordering)) return false;
  // the indexes of undelivered events hold their status (migration 020): read by id,
  // PostgreSQL checks each entry there, where a webhook's own events are looked up in
  // the table one by one (70 ms to find none of 100,000 answered 404, against 6)
  if (failedStatus(filters)) return false;
  if (hasDateRange(filters) && !filters.ids?.dense) return false;
  const given = Object.entries(filters).filter(([, v]) => v !== undefined);
  // a webhook alone is read off its index without the events (listHookEvents)
  return given.length > 1 && given.every(([k]) => OWN_FILTERS.has(k));
}

/**
 * The events of a status, in the order a page sorted by status reads them: an attempt
 * writes the status and `delivered` together (isDeliveredStatus), so a delivered
 * event's is a 2xx, 200 (`ok`) or another (`other`, migration 026's index), an
 * undelivered one's a failure (`failed`, above or below the 2xx, in the index of
 * migration 020 with the status it holds) or none, not yet attempted or never answered
 * (`none`, last either way, as the order puts nulls).
 */
type StatusPart = 'failedAbove' | 'other' | 'ok' | 'failedBelow' | 'none';

const STATUS_PARTS: Record<'desc' | 'asc', StatusPart[]> = {
  desc: ['failedAbove', 'other', 'ok', 'failedBelow', 'none'],
  asc: ['failedBelow', 'ok', 'other', 'failedAbove', 'none'],
};

/** Each part's events (an event `i`), but `ok`'s, which are read as a status of 200. */
const STATUS_PART_SQL = {
  failed: 'not i.delivered and i.retry_count > 0 and i.response_http_status is not null',
  other: deliveredOther('i'),
  none: 'i.response_http_status is null',
};

/**
 * Whether a page is sorted by `field` alone, and read part by part (idsByStatus,
 * idsByRetries). With a status asked for, a page sorted by status is sorted by id
 * (listHookEvents); with an object, a uuid or a `modified_date` range (fewIndexed), it
 * is read as before. A `created_date` range keeps each part's read off an index to the
 * range's span of ids (spanInIndex): read as one statement, 500,000 events of a range
 * of 1,200,000 were sorted for the first page, 65-149 ms on PostgreSQL without
 * statistics, now 3.3-11.3 ms.
 */
function sortedAlone(
  f: HookEventFilters,
  ordering: Ordering,
  field: 'response_http_status' | 'retry_count',
): boolean {
  return (
    ordering.length === 1 &&
    ordering[0]!.field === field &&
    (field === 'retry_count' || f.response_http_status === undefined) &&
    f.uuid === undefined &&
    !indexedFilter(f)
  );
}

/**
 * The condition on an index's entry `i` that keeps it to the span of ids of the blocks
 * `f`'s `created_date` range meets (rangeBlocks), which hold every event of the range;
 * none without a range. Read off an index in order without it, a page sorted by status
 * or by retry count of a range of old events looked up every newer entry first.
 */
async function spanInIndex(
  db: Queryable,
  f: HookEventFilters,
): Promise<(params: unknown[]) => string> {
  if (!hasDateRange(f)) return () => '';
  const { lo, hi } = (await rangeBlocks(db, f)).span;
  return (params) =>
    ` and i.id between $${params.push(lo)}::bigint and $${params.push(hi)}::bigint`;
}

/**
 * A page gathered from reads in order, each as many as it still `wanted`: `take` adds a
 * read's ids past the offset, and says whether the page is full. Each read is its own
 * statement: an event that moved between two of them is kept where it was read first.
 */
function gathered(limit: number, offset: number) {
  const ids: string[] = [];
  const seen = new Set<string>();
  let skip = offset;
  return {
    ids,
    wanted: () => skip + limit - ids.length,
    take(rows: { id: string | number }[]): boolean {
      const fresh = rows.map(({ id }) => String(id)).filter((id) => !seen.has(id) && seen.add(id));
      ids.push(...fresh.slice(skip));
      skip = Math.max(0, skip - fresh.length);
      return ids.length >= limit;
    },
  };
}

/** The webhook asked for, and the user's, on an index's entry `i` that holds it. */
function webhookInIndex(scope: Scope, f: HookEventFilters, params: unknown[]): string {
  let sql = '';
  if (f.webhook !== undefined)
    sql += isInt4(f.webhook) ? ` and i.webhook_id = $${params.push(f.webhook)}` : ' and false';
  if (!scope.isAdmin)
    sql += ` and i.webhook_id in (
      select w.id from webhooks w where w.user_id = $${params.push(scope.userId)})`;
  return sql;
}

/** An event `e` by the id of `own`, if it matches `f` in `scope`: a lateral lookup. */
const lookedUp = (scope: Scope, f: HookEventFilters, params: unknown[]): string =>
  `select from hook_events e ${scopeJoin(scope)}
   ${whereClause(scope, f, params)} and e.id = own.id offset 0`;

/**
 * Ids read in order off one index (`read`, of entries `i`, selecting what `by` sorts
 * on, which it writes on a given alias), a subquery so that PostgreSQL cannot read the
 * table another way, each then looked up by id (`matching`, of `own.id`, as lookedUp
 * writes it; `offset 0` there keeps it a lookup per id, where a merge join would read
 * the table by id again).
 */
const inOrder = (read: string, by: (alias: string) => string, matching: string): string =>
  `select own.id from (${read} order by ${by('i')}) own
   cross join lateral (${matching}) e order by ${by('own')}`;

/** `page`'s next ids read in order (inOrder), each looked up for `f` in `scope`. */
async function takeInOrder(
  db: Queryable,
  scope: Scope,
  f: HookEventFilters,
  page: ReturnType<typeof gathered>,
  read: (params: unknown[]) => string,
  by: (alias: string) => string,
): Promise<boolean> {
  const params: unknown[] = [];
  const { rows } = await db.query<{ id: string }>(
    `${inOrder(read(params), by, lookedUp(scope, f, params))} limit $${params.push(page.wanted())}`,
    params,
  );
  return page.take(rows);
}

const sortedByTheStatusAsked = (f: HookEventFilters, ordering: Ordering): boolean =>
  ordering.length === 1 &&
  ordering[0]!.field === 'response_http_status' &&
  f.response_http_status !== undefined;

/**
 * The ids of a page sorted by status alone, part by part (StatusPart), each read in
 * order until the page is full. No index holds every event by status, so PostgreSQL
 * read and sorted every match: with 1,000,000 events of one webhook and then 200,000
 * of another, without statistics, 216-304 ms on PostgreSQL for the first page of all or
 * of the first's, 135-156 for the undelivered or a type's (with statistics 50-332), now
 * 10-32 (21-35). The statuses of failures, or of the other 2xx, are read off the index
 * of those events, which holds the status, and then each status's events by id, off
 * the same index; 200's as a status of 200 asked for, by id (listHookEvents); the
 * events of no status by id. Each part relies on an attempt writing the status and
 * `delivered` together, as the reads of a status do (attemptedUndelivered).
 */
async function idsByStatus(
  db: Queryable,
  scope: Scope,
  f: HookEventFilters,
  desc: boolean,
  limit: number,
  offset: number,
): Promise<string[]> {
  const dir = desc ? 'desc' : 'asc';
  const parts = STATUS_PARTS[dir].filter((part) =>
    part === 'ok' || part === 'other'
      ? f.delivered !== false && !f.undelivered
      : part === 'none' || f.delivered !== true,
  );
  const page = gathered(limit, offset);
  const inSpan = await spanInIndex(db, f);
  // The events of a kind (StatusPart, but `ok`), of one status if given, in the
  // index of their events: the webhook asked for, and the user's, checked there (and a
  // range's span of ids, which that index holds in order). A
  // failure's are written so that no other index takes them: with a webhook's undelivered
  // events' index there (migration 006), PostgreSQL read each of that webhook's
  // undelivered rows from the table for its status (922 for 593 failures), and with the
  // index of them by type, webhook and id it read all of the webhook's and sorted them
  // by id (27 ms for 100,000, 11 so).
  type Kind = Exclude<StatusPart, 'ok' | 'failedAbove' | 'failedBelow'> | 'failed';
  const of = (kind: Kind, params: unknown[], status?: number): string => {
    const rest = `${status === undefined ? '' : ` and i.response_http_status = $${params.push(status)}`}${webhookInIndex(scope, f, params)}`;
    return kind === 'failed'
      ? `${STATUS_PART_SQL.failed}${inSpan(params)} and (true${rest}) is true`
      : `${STATUS_PART_SQL[kind]}${rest}${inSpan(params)}`;
  };
  // the events of a kind by id, each looked up for the filters, as many as the page
  // still wants
  const byId = (kind: Kind, status?: number): Promise<boolean> =>
    takeInOrder(
      db,
      scope,
      f,
      page,
      (params) => `select i.id from hook_events i where ${of(kind, params, status)}`,
      (a) => `${a}.id ${dir}`,
    );
  // the statuses of failures, or of the other 2xx, in order, read once for both parts
  const read: Partial<Record<'failed' | 'other', Promise<number[]>>> = {};
  const statusesOf = (kind: 'failed' | 'other'): Promise<number[]> => {
    const params: unknown[] = [];
    return (read[kind] ??= db
      .query<{ status: number }>(
        `select distinct i.response_http_status as status from hook_events i
         where ${of(kind, params)}`,
        params,
      )
      .then(({ rows }) => rows.map((r) => r.status).sort((a, b) => (desc ? b - a : a - b))));
  };
  // whether the page is full once `part` is read
  const readPart = async (part: StatusPart): Promise<boolean> => {
    if (part === 'ok') return pageById(db, scope, { ...f, response_http_status: 200 }, desc, page);
    if (part === 'none') return byId('none');
    // the part's statuses, off the index of its events, then each by id: sorted by
    // status there, every entry of a failure was sorted before the first was looked up
    // (78 ms for 120,000, 1.8 to read the page of the most common status by id)
    const kind = part === 'other' ? 'other' : 'failed';
    for (const status of await statusesOf(kind)) {
      if (part === 'failedAbove' ? status < 300 : part === 'failedBelow' && status >= 200) continue;
      if (await byId(kind, status)) return true;
    }
    return false;
  };
  for (const part of parts) if (await readPart(part)) break;
  return page.ids.slice(0, limit);
}

/**
 * The ids of a page sorted by retry_count alone. An event's count is null until its
 * first attempt, and 1 after it for most, which are delivered at the first; those
 * attempted again are in the index of migration 027, in the order of their count with
 * their webhook. So a page reads those above 1 off it in order, checked there for the
 * webhook and the user and looked up for the other filters, those of 1 by id, those
 * below (none the service writes) off the index, and those of none by id, part after
 * part until the page is full. Read and sorted as one statement, the first page of
 * 1,200,000 events took 249-252 ms on PostgreSQL without statistics, a webhook's
 * 332-335; now 2.6-7.3.
 */
async function idsByRetries(
  db: Queryable,
  scope: Scope,
  f: HookEventFilters,
  desc: boolean,
  limit: number,
  offset: number,
): Promise<string[]> {
  const dir = desc ? 'desc' : 'asc';
  const page = gathered(limit, offset);
  // those attempted more than once (or less), off the index of them in order, the
  // webhook and the user written so that no other index takes them (as a failure's
  // status is, idsByStatus)
  const inSpan = await spanInIndex(db, f);
  const retried = (above: boolean): Promise<boolean> =>
    takeInOrder(
      db,
      scope,
      f,
      page,
      (params) => `select i.id, i.retry_count from hook_events i
        where i.retry_count <> 1 and i.retry_count ${above ? '>' : '<'} 1
          and (true${webhookInIndex(scope, f, params)}${inSpan(params)}) is true`,
      (a) => `${a}.retry_count ${dir}, ${a}.id ${dir}`,
    );
  const byId = (attempts: 'one' | 'none') => pageById(db, scope, { ...f, attempts }, desc, page);
  const parts = desc
    ? [() => retried(true), () => byId('one'), () => retried(false)]
    : [() => retried(false), () => byId('one'), () => retried(true)];
  // an event attempted has a count, and one delivered or with a status was attempted
  if (!f.undelivered && f.delivered !== true && f.response_http_status === undefined)
    parts.push(() => byId('none'));
  for (const part of parts) if (await part()) break;
  return page.ids.slice(0, limit);
}

/**
 * The page's next events of `f` by id, read as a page by id is (pageRead), added to
 * `page`; whether it is full.
 */
async function pageById(
  db: Queryable,
  scope: Scope,
  f: HookEventFilters,
  desc: boolean,
  page: ReturnType<typeof gathered>,
): Promise<boolean> {
  const wanted = page.wanted();
  const read = await pageRead(db, scope, f, [{ field: 'id', desc }], wanted, 0);
  const { rows } = await db.query<{ id: string }>(
    `select page.id::text as id from (${read.ids} limit $${read.params.push(wanted)}) page
     order by page.id ${desc ? 'desc' : 'asc'}`,
    read.params,
  );
  return page.take(rows);
}

/** The events of `ids`, in their order. */
async function eventsByIds(db: Queryable, ids: string[]): Promise<HookEventJson[]> {
  if (ids.length === 0) return [];
  const { rows } = await db.query<HookEventRow>(
    `select ${COLUMNS} from hook_events e join webhooks w on w.id = e.webhook_id
     where e.id = any($1::bigint[])`,
    [ids],
  );
  const at = new Map(ids.map((id, i) => [id, i]));
  return rows.map(hookEventJson).sort((a, b) => at.get(String(a.id))! - at.get(String(b.id))!);
}

/**
 * A page of events: first the page's ids, then their rows. PostgreSQL takes a webhook's
 * events to be spread evenly over the ids, so for a webhook with most of them it
 * expects to find a page soon reading the whole table backwards by id, and when its
 * events are not the newest it reads past all the others': with 1,000,000 of one
 * webhook and then 200,000 of another, the first's first page took 20 ms on PostgreSQL
 * and 66 on PGlite. Asked for ids alone, it reads them off the index of the webhook's
 * events without visiting the table (0.1 ms), and fetches the page's 20 rows by id.
 *
 * Filtered by an event type or a content type without a webhook, or for a user, the ids
 * are read webhook by webhook when that passes fewer rows (readsPerWebhook): each
 * webhook with matches, as hook_event_counts has them, gives its first `wanted` off its
 * own index, and the page is the first of those. No index serves the type alone, and
 * read by id the first page of a type with 10,000 events followed by 1,000,000 of
 * another read them all first; a user's, the events of every other user newer than
 * theirs.
 */
export async function listHookEvents(
  db: Queryable,
  scope: Scope,
  asked: HookEventFilters,
  ordering: Ordering,
  limit: number,
  offset: number,
): Promise<HookEventJson[]> {
  if (sortedAlone(asked, ordering, 'response_http_status'))
    return eventsByIds(db, await idsByStatus(db, scope, asked, ordering[0]!.desc, limit, offset));
  if (sortedAlone(asked, ordering, 'retry_count'))
    return eventsByIds(db, await idsByRetries(db, scope, asked, ordering[0]!.desc, limit, offset));
  // one status asked for and sorted by it: sorted by id, which the reads by id serve
  if (sortedByTheStatusAsked(asked, ordering))
    ordering = [{ field: 'id', desc: ordering[0]!.desc }];
  const { ids, params, order } = await pageRead(db, scope, asked, ordering, limit, offset);
  params.push(limit, offset);
  const { rows } = await db.query<HookEventRow>(
    `select ${COLUMNS} from (
       ${ids} limit $${params.length - 1} offset $${params.length}
     ) page join hook_events e on e.id = page.id join webhooks w on w.id = e.webhook_id
     order by ${order}`,
    params,
  );
  return rows.map(hookEventJson);
}

/** Whether `f` is a `created_date` range and nothing else. */
const rangeOnly = (f: HookEventFilters): boolean =>
  Object.entries(f).every(
    ([k, v]) => v === undefined || k === 'created_date__gte' || k === 'created_date__lte',
  );

/**
 * `f` with the `created_date` bound its `modified_date` range's end gives: an event is
 * never modified before it was created (migration 028), so one modified before a date
 * was created before it too, and the blocks of ids of that `created_date` range bound
 * its events (dateRangeRead). A range of more than INDEXED_ROWS events (fewIndexed) was
 * read as PostgreSQL chose, by id past every newer event: with 1,000,000 events of one
 * webhook and then 200,000 of another, the oldest 50,000 modified took 163 ms on
 * PostgreSQL, with their webhook 128 and for its user, read webhook by webhook, 918.
 * Only when no `created_date__lte` is asked for: with one, both are kept as asked, and
 * which ends first is left to PostgreSQL, which parses them.
 */
function createdBefore(f: HookEventFilters): HookEventFilters {
  if (f.modified_date__lte === undefined || f.created_date__lte !== undefined) return f;
  return { ...f, created_date__lte: f.modified_date__lte };
}

/**
 * How a page is read (listHookEvents): `ids`, a statement of its events' ids in order,
 * to be limited and offset, with its `params`, and `order`, its ORDER BY on an event `e`.
 */
async function pageRead(
  db: Queryable,
  scope: Scope,
  asked: HookEventFilters,
  ordering: Ordering,
  limit: number,
  offset: number,
): Promise<{ ids: string; params: unknown[]; order: string }> {
  const indexed = await fewIndexed(db, asked);
  if (!indexed) asked = createdBefore(asked);
  const date = indexed ? undefined : await dateRangeRead(db, asked, ordering);
  // a range, or a status, of few events, read off their index and sorted
  const sorted =
    date === 'sorted' || (!indexed && !date && (await fewOfStatus(db, asked, ordering)));
  const span = typeof date === 'object' ? date : undefined;
  const filters = span ? { ...asked, ids: span } : asked;
  const perWebhook =
    !indexed && !sorted && (await readsPerWebhook(db, scope, filters, ordering, limit + offset));
  const ownWebhook = !indexed && !sorted && !perWebhook && readsOwnWebhook(filters, ordering);
  // a dense span not read by webhook: undelivered ones off their index, the others'
  // ids window by window (dateRangeRead)
  const dense = !indexed && !sorted && !perWebhook && !ownWebhook && span?.dense;
  const windowed =
    dense && !attemptedUndelivered(filters)
      ? await spanWindows(db, scope, filters, span, ordering[0]?.desc ?? true, limit + offset)
      : undefined;
  const params: unknown[] = [];
  const order = [...ordering, { field: 'id' as const, desc: ordering[0]?.desc ?? true }]
    .map(
      (o) =>
        `${ORDERING_FIELDS[o.field]} ${o.desc ? 'desc' : 'asc'}` +
        (NULLABLE_ORDERING.has(o.field) ? ' nulls last' : ''),
    )
    .join(', ');
  // the order of ids read off an index (inOrder), on its alias
  const idOrder = (alias: string) => order.replaceAll('e.id', `${alias}.id`);
  let ids: string;
  if (indexed) {
    // the object's events, or the range's, off their index, checked, then sorted
    ids = `select e.id from (${indexedMatches(scope, indexed, params)}) e order by ${order}`;
  } else if (date === 'sorted' && (!scope.isAdmin || !rangeOnly(filters))) {
    // the range's ids off the index by date alone, each then looked up for the rest, in
    // order until the page is full: with another filter, which that index does not hold,
    // or for a user, PostgreSQL could take the range for a third of the table and read
    // all of it (the oldest 5,000 of 1,200,000: for their user 187 ms, undelivered 122,
    // and a page sorted by status read its part of 200s so, 136)
    const range = blockRange(filters, params).events;
    ids = inOrder(
      `select i.id from (select e.id from hook_events e where ${range} offset 0) i`,
      idOrder,
      lookedUp(scope, filters, params),
    );
  } else if (sorted) {
    // the range's events off the index by date (or the status's off its own), a subquery
    // so that PostgreSQL cannot read the table by id instead, then sorted
    ids = `select r.id from (
        select e.id from hook_events e ${scopeJoin(scope)}
        ${whereClause(scope, filters, params)} offset 0
      ) r order by ${order.replaceAll('e.id', 'r.id')}`;
  } else if (windowed) {
    ids = `select e.id from hook_events e
      where e.id = any($${params.push(windowed)}::bigint[]) order by ${order}`;
  } else if (dense) {
    // Undelivered ones (attemptedUndelivered) off the index of those by id through the
    // span, checked there for the webhook and the status it holds (migration 020), then
    // each for the rest by id. Read window by window, each entry's row was read from the
    // table for its status: 106 ms to find none of 800,000 answered 404, 7-16 so.
    const of = ['not i.delivered', 'i.retry_count > 0'];
    if (filters.webhook !== undefined && isInt4(filters.webhook))
      of.push(`i.webhook_id = $${params.push(filters.webhook)}`);
    const status = filters.response_http_status;
    if (failedStatus(filters) && isInt4(status!))
      of.push(`i.response_http_status = $${params.push(status)}`);
    of.push(`i.id between $${params.push(span.lo)}::bigint and $${params.push(span.hi)}::bigint`);
    const read = `select i.id from hook_events i where ${of.join(' and ')}`;
    ids = inOrder(read, idOrder, lookedUp(scope, filters, params));
  } else if (perWebhook || ownWebhook) {
    // Each webhook's ids in order off its own index (inOrder), where PostgreSQL would
    // read the whole table by id (expecting each webhook to hold an even share of the
    // events). Undelivered ones are read off the partial indexes of them (migration 006),
    // which the undelivered list's narrows to the type.
    let of = '';
    const failed = attemptedUndelivered(filters);
    if (filters.delivered === false || failed) of += ' and not i.delivered';
    if (failed) of += ' and i.retry_count > 0';
    if (failed && filters.event_type !== undefined) {
      params.push(filters.event_type);
      of += ` and i.event_type = $${params.length}`;
    }
    // a 2xx other than 200 off the index of those (migration 026)
    if (otherDeliveredStatus(filters))
      of += ` and ${deliveredOther('i')} and i.response_http_status = $${params.push(filters.response_http_status)}`;
    const matching = lookedUp(ADMIN, filters, params);
    // the webhooks with matching events (the one asked for, if any), from the totals, in
    // this statement's snapshot, and for each the span of its matches' ids: it reads
    // from its newest match to its oldest (or up), past the events of other types it may
    // have on either side, and a key with no events reads nothing
    const webhooks = webhooksMatching(scope, filters, params);
    const own = (webhook: string, oldest: string, newest: string) =>
      inOrder(
        `select i.id from hook_events i
         where i.webhook_id = ${webhook}${of} and i.id between ${oldest} and ${newest}`,
        idOrder,
        matching,
      );
    // each webhook's span kept to the range's too, when it has one
    let [oldest, newest] = ['k.oldest', 'k.newest'];
    if (span) {
      params.push(span.lo, span.hi);
      oldest = `greatest(k.oldest, $${params.length - 1}::bigint)`;
      newest = `least(k.newest, $${params.length}::bigint)`;
    }
    if (ownWebhook) {
      params.push(filters.webhook);
      // one webhook's bounds, read once; none (no row, out of scope) match no id: taken
      // in a subquery, which gives a null without a row (`greatest` and `least` pass
      // over one)
      ids = `with k as materialized (${webhooks}) ${own(
        `$${params.length}`,
        `(select ${oldest} from k)`,
        `(select ${newest} from k)`,
      )}`;
    } else {
      params.push(limit + offset);
      ids = `select x.id from (${webhooks}) k cross join lateral (
          ${own('k.webhook_id', oldest, newest)} limit $${params.length}
        ) x order by ${order.replaceAll('e.id', 'x.id')}`;
    }
  } else {
    const first = ordering[0];
    const dated =
      (first?.field === 'created_date' || first?.field === 'modified_date') &&
      createdSpan(scope, filters, first.desc, params, first.field);
    ids = `${dated ? dated.with : ''} select e.id from hook_events e ${scopeJoin(scope)}
      ${whereClause(scope, filters, params)}${dated ? ` and ${dated.on}` : ''} order by ${order}`;
  }
  return { ids, params, order };
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
    `select e.id, e.delivered from hook_events e ${scopeJoin(scope)}
     where e.uuid = $1::uuid${scopeClause(scope, params)}`,
    params,
  );
  return rows[0];
}
