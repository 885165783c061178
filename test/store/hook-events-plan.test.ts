import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Db, Queryable } from '../../src/store/db.js';
import { ensureUser } from '../../src/store/tokens.js';
import {
  countHookEvents,
  listHookEvents,
  type HookEventFilters,
  type HookEventJson,
  type Ordering,
} from '../../src/store/hook-events.js';
import type { Scope } from '../../src/store/webhooks.js';
import { noting, rowsRead, testDb, UNNAMED, vacuumed, type Sent } from '../helpers/db.js';
import { insertWebhook } from '../helpers/rows.js';

let db: Db;
let drop: () => Promise<void>;
let webhook: number;
let owner: number;
const ADMIN: Scope = { userId: 0, isAdmin: true };

before(async () => {
  ({ db, drop } = await testDb());
  owner = (await ensureUser(db, 'plan', true)).id;
  webhook = await insertWebhook(db, owner);
  await db.query(
    `with ins as (
       insert into hook_events (webhook_id, uuid, event_type, delivered, retry_count)
       select $1, gen_random_uuid(), 'package.created', g % 10 <> 0, 1 + g % 3
       from generate_series(1, 2000) g returning id)
     insert into hook_event_payloads (hook_event_id, request_payload)
     select id, json_build_object('seq', id) from ins`,
    [webhook],
  );
  await db.query('analyze hook_events');
});
after(() => drop());

/** The page `listHookEvents` returns and the statement it sent, run as the service runs it. */
async function listStatement(ordering: Ordering): Promise<{ sent: Sent; page: HookEventJson[] }> {
  const seen = new Map<string, Sent>();
  const page = await listHookEvents(
    noting(db, seen),
    ADMIN,
    { webhook, delivered: false },
    ordering,
    20,
    0,
  );
  assert.equal(page.length, 20);
  assert.ok(
    page.every((e) => e.delivered === false),
    'a page of undelivered events',
  );
  const sent = seen.get(UNNAMED);
  assert.ok(sent, 'listHookEvents sent no statement');
  return { sent, page };
}

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Index Name'?: string;
  /** With `analyze` only. */
  'Actual Loops'?: number;
  'Actual Rows'?: number;
  'Rows Removed by Filter'?: number;
  Plans?: PlanNode[];
}

/** Every node of the statement's plan, depth first; with `analyze`, the statement runs. */
async function planOf(on: Queryable, { sql, params }: Sent, analyze = false): Promise<PlanNode[]> {
  const { rows } = await on.query<{ 'QUERY PLAN': unknown }>(
    `explain (${analyze ? 'analyze, ' : ''}format json) ${sql}`,
    [...params],
  );
  const raw = rows[0]!['QUERY PLAN'];
  const plan = (typeof raw === 'string' ? JSON.parse(raw) : raw) as [{ Plan: PlanNode }];
  const nodes: PlanNode[] = [];
  const walk = (node: PlanNode) => {
    nodes.push(node);
    for (const child of node.Plans ?? []) walk(child);
  };
  walk(plan[0].Plan);
  return nodes;
}

/** The plan's node types, with sorts made as costly to the planner as they can be. */
async function planNodes(sent: Sent): Promise<string[]> {
  return db.transaction(async (tx) => {
    await tx.query('set local enable_sort = off');
    await tx.query('set local enable_seqscan = off');
    return (await planOf(tx, sent)).map((n) => n['Node Type']);
  });
}

test("the first page of a webhook's undelivered events, by id, is read off an index", async () => {
  for (const ordering of [
    [],
    [{ field: 'id', desc: true }],
    [{ field: 'id', desc: false }],
  ] as Ordering[]) {
    const nodes = await planNodes((await listStatement(ordering)).sent);
    assert.ok(
      !nodes.includes('Sort'),
      `ordering ${JSON.stringify(ordering)}: ${nodes.join(' > ')}`,
    );
    assert.ok(
      nodes.some((n) => n.startsWith('Index')),
      `ordering ${JSON.stringify(ordering)}: ${nodes.join(' > ')}`,
    );
  }
});

test('a sorted page looks up the payloads of its own rows only, after the sort', async () => {
  // sorted by two fields, read as one statement (a field alone may be read part by part)
  const { sent, page } = await listStatement([
    { field: 'retry_count', desc: false },
    { field: 'modified_date', desc: true },
  ]);
  const nodes = await planOf(db, sent, true);
  assert.ok(
    nodes.some((n) => n['Node Type'] === 'Sort'),
    'this ordering needs a sort, the case the test is about',
  );
  const lookups = nodes.filter((n) => n['Relation Name'] === 'hook_event_payloads');
  assert.equal(lookups.length, 1);
  // 200 events match; a lookup below the sort would run for each of them
  assert.equal(lookups[0]!['Actual Loops'], 20);
  for (const e of page) assert.deepEqual(e.request_payload, { seq: e.id });
});

test("a webhook's first page reads its own events, though most are its own and the newest another's", async () => {
  // PostgreSQL takes a webhook's events to be spread evenly over the ids; read backwards
  // by id, the first page of one holding most of them but none of the newest went past
  // every newer event of the others (with 1,000,000 and 200,000, 20 ms on PostgreSQL)
  const other = await insertWebhook(db, owner);
  await db.query(
    `insert into hook_events (webhook_id, uuid, event_type, delivered, retry_count)
     select $1, gen_random_uuid(), 'package.created', true, 1 from generate_series(1, 500)`,
    [other],
  );
  await vacuumed(db, 'hook_events');
  const stranger = (await ensureUser(db, 'plan-webhook-stranger', false)).id;
  for (const f of [
    { webhook },
    { webhook, delivered: true },
    { webhook, event_type: 'package.created', delivered: true },
    { webhook, undelivered: true },
  ] as HookEventFilters[]) {
    const { sent } = await firstPage(f);
    const { passedOver, described } = await readPast(sent);
    // a few of its own events on the way, for the filtered pages (EXPLAIN gives a
    // lookup's rows removed as an average over its loops); 500 read by id
    assert.ok(passedOver <= 10, `${JSON.stringify(f)}: ${passedOver} passed over: ${described}`);
    assert.deepEqual(
      await listHookEvents(db, { userId: stranger, isAdmin: false }, f, [], 20, 0),
      [],
      "another user's webhook",
    );
  }
});

/** The rows the plan of `sent` removed by filter, and its nodes; runs the statement. */
async function readPast(sent: Sent): Promise<{ passedOver: number; described: string }> {
  const nodes = await planOf(db, sent, true);
  return {
    passedOver: nodes.reduce((sum, n) => sum + (n['Rows Removed by Filter'] ?? 0), 0),
    described: nodes.map((n) => `${n['Node Type']} ${n['Index Name'] ?? ''}`).join(' > '),
  };
}

/**
 * Rows of hook_events read (as rowsRead counts them) and entries of its indexes read for
 * a bitmap, from one run of `sent`; with `tableOnly`, the rows of the table alone, not
 * the entries an index-only scan read.
 */
async function entriesRead(sent: Sent, tableOnly = false): Promise<number> {
  const nodes = await planOf(db, sent, true);
  return nodes.reduce((sum, n) => {
    const read = (n['Actual Rows'] ?? 0) * (n['Actual Loops'] ?? 1);
    if (n['Node Type'] === 'Bitmap Index Scan') return sum + (tableOnly ? 0 : read);
    if (n['Relation Name'] !== 'hook_events') return sum;
    if (tableOnly && n['Node Type'] === 'Index Only Scan') return sum;
    return sum + read + (n['Rows Removed by Filter'] ?? 0) * (n['Actual Loops'] ?? 1);
  }, 0);
}

/**
 * The ids of a page of `f` in `scope`, by id, as a plain query of the whole table reads
 * them: each filter as the API defines it, nothing the service infers from it.
 */
async function expected(
  scope: Scope,
  f: HookEventFilters,
  asc = false,
  offset = 0,
  orderBy = `e.id ${asc ? 'asc' : 'desc'}`,
): Promise<number[]> {
  const { rows } = await db.query<{ id: number }>(
    `select e.id::int as id from hook_events e join webhooks w on w.id = e.webhook_id
     where ($1::int is null or e.webhook_id = $1) and ($2::text is null or e.event_type = $2)
       and ($3::int is null or e.content_type_id = $3)
       and ($4::int is null or e.response_http_status = $4)
       and ($5::bool is null or e.delivered = $5)
       and (not $6 or (not e.delivered and e.retry_count > 0))
       and ($7::timestamptz is null or e.created_date >= $7)
       and ($8::timestamptz is null or e.created_date <= $8)
       and ($9::bool or w.user_id = $10)
       and ($12::text is null or (e.object_id #>> '{}') = $12)
       and ($13::uuid is null or e.uuid = $13)
       and ($14::timestamptz is null or e.modified_date >= $14)
       and ($15::timestamptz is null or e.modified_date <= $15)
     order by ${orderBy} limit 20 offset $11`,
    [
      f.webhook ?? null,
      f.event_type ?? null,
      f.content_type ?? null,
      f.response_http_status ?? null,
      f.delivered ?? null,
      !!f.undelivered,
      f.created_date__gte ?? null,
      f.created_date__lte ?? null,
      scope.isAdmin,
      scope.userId,
      offset,
      f.object_id ?? null,
      f.uuid ?? null,
      f.modified_date__gte ?? null,
      f.modified_date__lte ?? null,
    ],
  );
  return rows.map((r) => r.id);
}

/**
 * The first page of `f` in `scope` (an admin's unless given), by id (newest first unless
 * `asc`), checked against expected(), and the statement that read it.
 */
async function firstPage(
  f: HookEventFilters,
  asc = false,
  scope: Scope = ADMIN,
): Promise<{ page: HookEventJson[]; sent: Sent; all: Sent[] }> {
  const seen = new Map<string, Sent>();
  const all: Sent[] = [];
  const ordering: Ordering = asc ? [{ field: 'id', desc: false }] : [];
  const page = await listHookEvents(noting(db, seen, all), scope, f, ordering, 20, 0);
  assert.deepEqual(
    page.map((e) => e.id),
    await expected(scope, f, asc),
    `${JSON.stringify(scope)} ${JSON.stringify(f)} asc ${asc}`,
  );
  return { page, sent: seen.get(UNNAMED)!, all };
}

/**
 * Each page of `filters` in each scope, by id both ways, at each offset, is the one
 * `expected` reads from the whole table.
 */
async function assertPages(
  scopes: Scope[],
  filters: HookEventFilters[],
  offsets: number[],
): Promise<void> {
  for (const f of filters) {
    for (const scope of scopes) {
      for (const asc of [false, true]) {
        for (const offset of offsets) {
          const ordering: Ordering = asc ? [{ field: 'id', desc: false }] : [];
          const page = await listHookEvents(db, scope, f, ordering, 20, offset);
          assert.deepEqual(
            page.map((e) => e.id),
            await expected(scope, f, asc, offset),
            `${JSON.stringify(scope)} ${JSON.stringify(f)} asc ${asc} offset ${offset}`,
          );
        }
      }
    }
  }
}

/**
 * `n` events of `type` for a webhook of their own, created now: newer than every dated
 * range the tests read, so that each test has the crowd its bounds are about whether or
 * not the tests before it ran (a test run alone by name).
 */
async function newerCrowd(n: number, type = 'package.created'): Promise<void> {
  await db.query(
    `insert into hook_events (webhook_id, uuid, event_type, delivered, retry_count)
     select $1, gen_random_uuid(), $3, true, 1 from generate_series(1, $2::int)`,
    [await insertWebhook(db, owner), n, type],
  );
}

/**
 * The next event written takes the first id of a block of ids (migration 022, 4,096
 * ids) with an empty block between it and the newest event's: the events written next
 * lie in blocks of their own.
 */
async function aBlockApart(): Promise<void> {
  await db.query(
    `select setval(pg_get_serial_sequence('hook_events', 'id'),
                   ((select max(id) from hook_events) >> 12 << 12) + 8191)`,
  );
}

/** The rows of the table the statements `sent` read, not their index entries. */
async function tableRowsRead(sent: Sent[]): Promise<number> {
  let read = 0;
  for (const s of sent) read += await entriesRead(s, true);
  return read;
}

/**
 * The table all visible (read by an index alone) and without its statistics, as on a
 * server that never ran ANALYZE, which this service does not (PGlite has no autovacuum).
 */
async function withoutStatistics(): Promise<void> {
  await vacuumed(db, 'hook_events', { analyze: false });
  await db.query(`delete from pg_statistic where starelid = 'hook_events'::regclass`);
}

/**
 * Pages sorted by `field` alone, both ways: each first page of `bounded` equal to a
 * plain sort of the whole table, full, and reading at most its number of the table's
 * rows by every statement sent; then every page of `filters` in each of `scopes` at
 * each of `offsets` equal to the plain sort's.
 */
async function assertSortedBy(
  field: 'response_http_status' | 'retry_count',
  bounded: [HookEventFilters, number, Scope?][],
  filters: HookEventFilters[],
  scopes: Scope[],
  offsets: number[],
): Promise<void> {
  const by = (desc: boolean): Ordering => [{ field, desc }];
  const orderBy = (desc: boolean) => {
    const dir = desc ? 'desc' : 'asc';
    return `e.${field} ${dir} nulls last, e.id ${dir}`;
  };
  for (const [f, most, scope = ADMIN] of bounded) {
    for (const desc of [true, false]) {
      const all: Sent[] = [];
      const page = await listHookEvents(noting(db, new Map(), all), scope, f, by(desc), 20, 0);
      const what = `${field} ${JSON.stringify(f)} desc ${desc}`;
      assert.deepEqual(
        page.map((e) => e.id),
        await expected(scope, f, !desc, 0, orderBy(desc)),
        what,
      );
      assert.equal(page.length, 20, what);
      const read = await tableRowsRead(all);
      assert.ok(read <= most, `${what}: ${read} rows read`);
    }
  }
  for (const f of filters)
    for (const scope of scopes)
      for (const desc of [true, false])
        for (const offset of offsets) {
          const page = await listHookEvents(db, scope, f, by(desc), 20, offset);
          assert.deepEqual(
            page.map((e) => e.id),
            await expected(scope, f, !desc, offset, orderBy(desc)),
            `${field} ${JSON.stringify(scope)} ${JSON.stringify(f)} desc ${desc} offset ${offset}`,
          );
        }
}

test("a rare event type's pages are read off its webhooks' own events", async () => {
  // no index serves the event type alone: read backwards by id, the first page of a
  // type whose events are all older than the others' read past every one of those
  // (10,000 of a type followed by 1,000,000 others: 252 ms on PostgreSQL)
  const stranger = (await ensureUser(db, 'plan-stranger', false)).id;
  const rare = await insertWebhook(db, owner);
  const mixed = await insertWebhook(db, stranger);
  const add = (id: number, n: number, type: string) =>
    db.query(
      `insert into hook_events (webhook_id, uuid, event_type, delivered, retry_count)
       select $1, gen_random_uuid(), case when $3 = 'mixed' then
                (case when g % 2 = 0 then 'package.shipped' else 'package.created' end)
              else $3 end, g % 4 <> 0, 1
       from generate_series(1, $2::int) g`,
      [id, n, type],
    );
  await add(rare, 300, 'package.shipped');
  await add(mixed, 100, 'mixed');
  await add(webhook, 3000, 'package.created');
  await vacuumed(db, 'hook_events');

  const shipped = { event_type: 'package.shipped' };
  const { page: first, sent } = await firstPage(shipped);
  // read by id, the 3,000 newer events of the other type come first; webhook by
  // webhook, each id read is looked up once: about 60 of each, and the page's 20
  const read = await rowsRead(db, sent, 'hook_events');
  assert.ok(read <= 500, `${read} rows of hook_events read`);
  assert.equal(first.length, 20);

  // whichever way the ids are read, the pages are those of the whole table
  await assertPages(
    [ADMIN, { userId: stranger, isAdmin: false }],
    [
      shipped,
      { ...shipped, delivered: false },
      { ...shipped, undelivered: true },
      { event_type: 'package.none' },
    ],
    [0, 20, 170, 400],
  );
});

test('a type of many events, all older than the others, is read webhook by webhook from its newest', async () => {
  // spread evenly, a seventh of the events would fill a page reading about 140 of them
  // by id; all older than the rest, reading by id passes every other event first
  const webhooks: number[] = [];
  for (let i = 0; i < 10; i++) webhooks.push(await insertWebhook(db, owner));
  await db.query(
    `insert into hook_events (id, webhook_id, uuid, event_type, delivered, retry_count)
     overriding system value
     select -g, ($1::int[])[1 + g % 10], gen_random_uuid(), 'order.updated', true, 1
     from generate_series(1, 1000) g`,
    [webhooks],
  );
  // and one of them newer events of another type, which its read starts before
  await db.query(
    `insert into hook_events (webhook_id, uuid, event_type, delivered, retry_count)
     select $1, gen_random_uuid(), 'package.created', true, 1 from generate_series(1, 2000)`,
    [webhooks[0]],
  );
  await newerCrowd(2000);
  await vacuumed(db, 'hook_events');
  const { rows } = await db.query<{ older: number; all: number }>(
    `select count(*) filter (where id < 0)::int as older, count(*)::int as "all"
     from hook_events`,
  );
  assert.ok(rows[0]!.all > 6 * rows[0]!.older, JSON.stringify(rows[0]));
  const seen = new Map<string, Sent>();
  const page = await listHookEvents(
    noting(db, seen),
    ADMIN,
    { event_type: 'order.updated' },
    [],
    20,
    0,
  );
  assert.deepEqual(
    page.map((e) => e.id),
    Array.from({ length: 20 }, (_, i) => -1 - i),
  );
  // each webhook's 20 read and looked up, and the page's: about 420; from the newest of
  // the first webhook's, 4,000 more
  const read = await rowsRead(db, seen.get(UNNAMED)!, 'hook_events');
  assert.ok(read <= 1000, `${read} rows of hook_events read`);
});

test("a user's page, and a content type's, whose events are all older than the others' is read webhook by webhook; an object or uuid with a type off their own indexes", async () => {
  // read by id, a user's first page passed every newer event of the other users (1,000
  // events before 1,110,000 others': 470 ms on PostgreSQL), and so did a content type's.
  // The user's 400 events and the 3,000 newer ones lie close in ids, so that, taken as
  // spread evenly, the user's would fill a page soon: the ids past their newest tell
  const quiet = (await ensureUser(db, 'plan-quiet', false)).id;
  const hooks = [await insertWebhook(db, quiet), await insertWebhook(db, quiet)];
  await db.query(
    `insert into hook_events (webhook_id, uuid, event_type, content_type_id, object_id,
                              delivered, retry_count)
     select ($1::int[])[1 + g % 2], gen_random_uuid(),
            case when g % 3 = 0 then 'package.shipped' else 'order.updated' end, 3,
            to_jsonb('quiet-' || g), g % 4 <> 0, 1
     from generate_series(1, 400) g`,
    [hooks],
  );
  await db.query(
    `insert into hook_events (webhook_id, uuid, event_type, object_id, delivered, retry_count)
     select $1, gen_random_uuid(), 'package.shipped', to_jsonb('loud-' || g), true, 1
     from generate_series(1, 3000) g`,
    [webhook],
  );
  await vacuumed(db, 'hook_events');
  const user: Scope = { userId: quiet, isAdmin: false };
  const read = async (scope: Scope, f: HookEventFilters, most: number) => {
    const { page, sent } = await firstPage(f, false, scope);
    assert.ok(page.length > 0, JSON.stringify(f));
    const rows = await rowsRead(db, sent, 'hook_events');
    assert.ok(rows <= most, `${JSON.stringify(f)}: ${rows} rows of hook_events read`);
  };
  // each webhook's 20 read and looked up, and the page's; of a type a third of each
  // webhook's events are, about 60 read and looked up in each
  await read(user, {}, 200);
  await read(user, { delivered: false }, 200);
  await read(user, { event_type: 'package.shipped' }, 400);
  await read(ADMIN, { content_type: 3 }, 200);
  // an object's or a uuid's own index finds the one event: read webhook by webhook, the
  // type's 3,000 newer events of the other webhook were looked up one by one
  await read(ADMIN, { event_type: 'package.shipped', object_id: 'quiet-3' }, 5);
  await read(user, { event_type: 'package.shipped', object_id: 'quiet-6' }, 5);
  const { rows } = await db.query<{ uuid: string }>(
    `select uuid::text from hook_events where (object_id #>> '{}') = 'quiet-3'`,
  );
  await read(ADMIN, { event_type: 'package.shipped', uuid: rows[0]!.uuid }, 5);
  await assertPages(
    [user, ADMIN],
    [{}, { delivered: true }, { content_type: 3, event_type: 'order.updated' }],
    [0, 20, 190],
  );
});

test("a webhook's page of a type or content type it has few or none of, or of a status other than 200, reads only those", async () => {
  // read off the webhook's own events, a type it had none of read every one of them
  // looking each up (1,000,000: 1.1 s on PostgreSQL); the totals bound the read to the
  // ids of its matches, and a status other than 2xx is an undelivered event's, whose
  // indexes hold it (migration 020)
  const big = await insertWebhook(db, owner);
  const add = (n: number, type: string) =>
    db.query(
      `insert into hook_events (webhook_id, uuid, event_type, content_type_id, delivered,
                                retry_count, response_http_status)
       select $1, gen_random_uuid(), $3, 4, g % 5 > 1, case when g % 5 = 0 then null else 1 end,
              case g % 5 when 0 then null when 1 then 500 + g % 2 * 3
                         else case when g % 15 = 4 then 204 else 200 end end
       from generate_series(1, $2::int) g`,
      [big, n, type],
    );
  await add(1500, 'package.created');
  await add(5, 'package.shipped');
  await add(1500, 'package.created');
  await vacuumed(db, 'hook_events');
  const { rows: counted } = await db.query<{ n: number }>(
    'select count(*)::int as n from hook_events where not delivered and retry_count > 0',
  );
  const undelivered = counted[0]!.n;
  assert.ok(undelivered < 3000, `${undelivered} undelivered events in all`);
  const { rows: others } = await db.query<{ n: number }>(
    'select count(*)::int as n from hook_events where delivered and response_http_status <> 200',
  );
  // delivered with another 2xx than 200 (migration 026)
  const other = others[0]!.n;
  assert.ok(other > 20 && other < 300, `${other} delivered with another 2xx`);

  const stranger = {
    userId: (await ensureUser(db, 'plan-status-stranger', false)).id,
    isAdmin: false,
  };
  for (const [f, most, length] of [
    [{ webhook: big, event_type: 'package.none' }, 0, 0],
    [{ webhook: big, content_type: 3 }, 0, 0],
    [{ webhook: big, delivered: false, event_type: 'package.none' }, 0, 0],
    // its five events, and the page's
    [{ webhook: big, event_type: 'package.shipped' }, 20, 5],
    [{ webhook: big, event_type: 'package.shipped', delivered: true }, 20, 3],
    // each undelivered event's entry at most, and the page's
    [{ webhook: big, response_http_status: 404 }, undelivered, 0],
    [{ response_http_status: 404 }, undelivered, 0],
    [{ webhook: big, response_http_status: 503 }, undelivered + 20, 20],
    [{ webhook: big, response_http_status: 503, event_type: 'package.shipped' }, 20, 1],
    // a 2xx other than 200, off the index of those (migration 026): their entries at
    // most, and the page's
    [{ webhook: big, response_http_status: 201 }, 0, 0],
    [{ response_http_status: 201 }, other, 0],
    [{ webhook: big, response_http_status: 204 }, 3 * 20, 20],
    [{ response_http_status: 204 }, other + 20, 20],
    [{ webhook: big, response_http_status: 204, event_type: 'package.shipped' }, 20, 1],
  ] as [HookEventFilters, number, number][])
    await assertRead(f, most, length);
  // as on a server that never ran ANALYZE, which this service does not: a status's
  // events are counted off their index first and, few, read off it (fewOfStatus), where
  // PostgreSQL took them to be many and read the table by id past 60,000 newer ones,
  // answered 204, whose entries make the index look the costlier
  const newer = await insertWebhook(db, owner);
  await db.query(
    `insert into hook_events (webhook_id, uuid, event_type, content_type_id, delivered,
                              retry_count, response_http_status)
     select $1, gen_random_uuid(), 'package.created', 4, true, 1, 204
     from generate_series(1, 60000)`,
    [newer],
  );
  await withoutStatistics();
  await assertRead({ response_http_status: 201 }, other, 0);
  await assertRead({ response_http_status: 204 }, other + 20, 20);
  await db.query('delete from webhooks where id = $1', [newer]);

  async function assertRead(f: HookEventFilters, most: number, length: number) {
    const { page, sent } = await firstPage(f);
    assert.equal(page.length, length, JSON.stringify(f));
    const read = await rowsRead(db, sent, 'hook_events');
    assert.ok(read <= most, `${JSON.stringify(f)}: ${read} rows of hook_events read`);
    assert.deepEqual(
      (await listHookEvents(db, stranger, f, [], 20, 0)).map((e) => e.id),
      await expected(stranger, f),
      `${JSON.stringify(f)}, another user`,
    );
  }
});

test("a page by id of a date range of the oldest events reads the range's, off the index by date", async () => {
  // read backwards by id, the first page of the oldest events passed every newer one
  // (the oldest 5,000 of 1,110,000: 196 ms on PostgreSQL)
  const dated = await insertWebhook(db, owner);
  await db.query(
    `insert into hook_events (id, webhook_id, uuid, event_type, delivered, retry_count,
                              created_date)
     overriding system value
     select -5000 - g, $1, gen_random_uuid(), 'package.created', g % 3 <> 0, 1,
            timestamptz '2020-01-01T00:00:00Z' + g * interval '1 minute'
     from generate_series(1, 2500) g`,
    [dated],
  );
  await newerCrowd(4000);
  await vacuumed(db, 'hook_events');
  const { rows: all } = await db.query<{ n: number }>('select count(*)::int as n from hook_events');
  assert.ok(all[0]!.n > 8000, `${all[0]!.n} events`);
  const stranger = {
    userId: (await ensureUser(db, 'plan-date-stranger', false)).id,
    isAdmin: false,
  };
  const oldest = { created_date__lte: '2020-01-02T09:20:00Z' };
  // with a type too, which read webhook by webhook would start at each one's newest
  // event of the type
  const ofType = { ...oldest, event_type: 'package.created' };
  for (const f of [oldest, ofType]) {
    const { sent } = await firstPage(f);
    // the range's 2,000 events, and the page's; by id, every newer event first
    const read = await rowsRead(db, sent, 'hook_events');
    assert.ok(read <= 2100, `${JSON.stringify(f)}: ${read} rows of hook_events read`);
  }
  await assertPages(
    [ADMIN, stranger],
    [
      oldest,
      ofType,
      { ...oldest, delivered: true },
      { created_date__gte: '2020-01-01T00:30:00Z', created_date__lte: '2020-01-01T01:00:00Z' },
      // most events: read by id
      { created_date__gte: '2020-01-01T00:30:00Z' },
      { created_date__lte: '2019-01-01T00:00:00Z' },
    ] as HookEventFilters[],
    [0, 40],
  );
});

test("a page by id of a larger date range keeps to the span of its events' ids", async () => {
  // more than 10,000 events are not sorted off the index by date; read by id, the first
  // page of a range passed every event created after it (50,000 in the middle of
  // 1,110,000: 96-102 ms on PostgreSQL; with a type, read webhook by webhook from each
  // one's newest event of it, 0.45-1.6 s)
  const spanned = await insertWebhook(db, owner);
  const ofRare = await insertWebhook(db, owner);
  // two blocks of 12,000, each id two apart, one in 50 of a rarer type and webhook;
  // between the later block's ids a few events created years after it, inside the span
  // of its ids but not in its range
  await db.query(
    `insert into hook_events (id, webhook_id, uuid, event_type, delivered, retry_count,
                              created_date)
     overriding system value
     select b.base - 2 * g, case when g % 50 = 0 then $2::int else $1::int end,
            gen_random_uuid(),
            case when g % 50 = 0 then 'order.updated'
                 when g % 2 = 0 then 'package.shipped' else 'package.created' end,
            g % 3 <> 0, 1, b.start + g * interval '1 minute'
     from (values (-100000, timestamptz '2018-01-01T00:00:00Z'),
                  (-50000, timestamptz '2019-01-01T00:00:00Z')) b(base, start),
          generate_series(1, 12000) g
     union all
     select -50001 - 2 * g, $1::int, gen_random_uuid(), 'package.shipped', true, 1,
            timestamptz '2025-01-01T00:00:00Z' + g * interval '1 minute'
     from generate_series(1000, 12000, 1000) g`,
    [spanned, ofRare],
  );
  await newerCrowd(9000);
  await newerCrowd(1000, 'order.updated');
  await vacuumed(db, 'hook_events');
  const { rows } = await db.query<{ newer: number; older: number }>(
    `select count(*) filter (where created_date > '2019-01-10')::int as newer,
            count(*) filter (where created_date < '2019-01-01')::int as older from hook_events`,
  );
  assert.ok(rows[0]!.newer > 10_000 && rows[0]!.older > 10_000, JSON.stringify(rows[0]));
  const range = {
    created_date__gte: '2019-01-01T00:00:00Z',
    created_date__lte: '2019-01-10T00:00:00Z',
  };
  const shipped = { ...range, event_type: 'package.shipped' };
  const own = { ...range, webhook: spanned };
  // a type rarer than the others, read webhook by webhook: another webhook holds 1,000
  // newer events of it (and those of the earlier test 1,000 more), all outside the range
  const rare = { ...range, event_type: 'order.updated' };
  for (const f of [range, shipped, own, rare] as HookEventFilters[]) {
    for (const asc of [false, true]) {
      const { sent } = await firstPage(f, asc);
      // from the span's end, the page's events, the few created later between them and
      // a lookup each; by id, the 12,000 events on the side it starts from first
      const read = await rowsRead(db, sent, 'hook_events');
      assert.ok(read <= 300, `${JSON.stringify(f)} asc ${asc}: ${read} rows of hook_events read`);
    }
  }
  const stranger = {
    userId: (await ensureUser(db, 'plan-span-stranger', false)).id,
    isAdmin: false,
  };
  const filters = [
    range,
    shipped,
    own,
    rare,
    { ...range, delivered: true },
    { ...shipped, undelivered: true },
    { created_date__lte: '2019-01-10T00:00:00Z' },
    { created_date__gte: '2019-01-01T00:00:00Z', event_type: 'package.created' },
    { created_date__gte: '2017-01-01T00:00:00Z', created_date__lte: '2017-02-01T00:00:00Z' },
  ] as HookEventFilters[];
  await assertPages([ADMIN, stranger], filters, [0, 40]);
  // an event of the range with the newest id: its span is then the whole table's
  await db.query(
    `insert into hook_events (webhook_id, uuid, event_type, delivered, retry_count, created_date)
     values ($1, gen_random_uuid(), 'package.shipped', true, 1, '2019-01-05T00:00:00Z')`,
    [spanned],
  );
  await assertPages([ADMIN, stranger], filters, [0, 40]);
});

test('a page and a count of a modified_date range of few events read them off its index', async () => {
  // a client polling for the events changed since its last call asks for the newest
  // dates, most often with none: read by id, that passed every event of the table
  // (1,110,000: 181-257 ms for the page and 70-82 for its count on PostgreSQL)
  const polled = await insertWebhook(db, owner);
  await db.query(
    `insert into hook_events (webhook_id, uuid, event_type, delivered, retry_count,
                              created_date, modified_date)
     select $1, gen_random_uuid(), 'package.created', g % 4 <> 0, 1,
            timestamptz '2022-01-01T00:00:00Z' + g * interval '1 minute',
            timestamptz '2022-01-01T00:00:00Z' + g * interval '1 minute'
     from generate_series(1, 3000) g`,
    [polled],
  );
  // and more than INDEXED_ROWS changed in 2098, whatever the other tests left
  await db.query(
    `insert into hook_events (webhook_id, uuid, event_type, delivered, retry_count,
                              modified_date)
     select $1, gen_random_uuid(), 'package.created', true, 1,
            timestamptz '2098-01-01T00:00:00Z' + g * interval '1 second'
     from generate_series(1, 10001) g`,
    [webhook],
  );
  // a tenth of them attempted again years later, in no order of their ids
  await db.query(
    `update hook_events set modified_date = timestamptz '2099-01-01T00:00:00Z'
                                            + ((id * 7919) % 1000) * interval '1 second'
     where webhook_id = $1 and id % 10 = 0`,
    [polled],
  );
  await vacuumed(db, 'hook_events', { analyze: false });
  // as on a server that never ran ANALYZE, which this service does not (PGlite has no
  // autovacuum): PostgreSQL then takes a webhook to hold few events
  await db.query(`delete from pg_statistic where starelid = 'hook_events'::regclass`);
  const { rows: all } = await db.query<{ n: number }>('select count(*)::int as n from hook_events');
  const none = { modified_date__gte: '2099-06-01T00:00:00Z' };
  const again = { modified_date__gte: '2099-01-01T00:00:00Z' };
  // the page: the range's events off the index, a lookup each and the page's rows; the
  // count: the range's index read a first time as well, up to 10,001, to choose
  for (const [f, most, mostCounted] of [
    [none, 0, 0],
    [{ ...none, webhook: polled, delivered: false }, 0, 0],
    [{ ...none, webhook }, 0, 0],
    [again, 2 * 300 + 20, 3 * 300],
    [{ ...again, webhook: polled, delivered: false }, 2 * 300 + 20, 3 * 300],
  ] as const) {
    const { sent } = await firstPage(f);
    // by id, every newer event
    const read = await rowsRead(db, sent, 'hook_events');
    assert.ok(read <= most, `${JSON.stringify(f)}: ${read} of ${all[0]!.n} rows read`);
    const seen = new Map<string, Sent>();
    const n = await countHookEvents(noting(db, seen), ADMIN, f);
    const { rows: plain } = await db.query<{ n: number }>(
      `select count(*)::int as n from hook_events
       where modified_date >= $1 and ($2::int is null or webhook_id = $2)
         and ($3::bool is null or delivered = $3)`,
      [f.modified_date__gte, 'webhook' in f ? f.webhook : null, 'webhook' in f ? false : null],
    );
    assert.equal(n, plain[0]!.n);
    const counted = await rowsRead(db, seen.get(UNNAMED)!, 'hook_events');
    assert.ok(counted <= mostCounted, `count of ${JSON.stringify(f)}: ${counted} rows read`);
  }
  // an event's uuid with the range is read as PostgreSQL plans it (off the index by
  // uuid, or the range's, as its statistics say), not the range's 300 with a lookup each
  const { rows: one } = await db.query<{ uuid: string }>(
    `select uuid::text as uuid from hook_events where webhook_id = $1 and id % 10 = 0 limit 1`,
    [polled],
  );
  const byUuid = { ...again, uuid: one[0]!.uuid };
  const { page: found, sent: uuidSent } = await firstPage(byUuid);
  assert.equal(found.length, 1);
  const uuidRead = await rowsRead(db, uuidSent, 'hook_events');
  assert.ok(uuidRead <= 300 + 5, `${JSON.stringify(byUuid)}: ${uuidRead} rows read`);
  const stranger = {
    userId: (await ensureUser(db, 'plan-modified-stranger', false)).id,
    isAdmin: false,
  };
  await assertPages(
    [ADMIN, stranger],
    [
      none,
      again,
      { ...again, delivered: true, event_type: 'package.created' },
      { modified_date__gte: '2022-01-01T10:00:00Z', modified_date__lte: '2022-01-01T20:00:00Z' },
      // more than INDEXED_ROWS events: not off its index (createdBefore)
      { modified_date__lte: '2099-01-01T00:10:00Z' },
    ] as HookEventFilters[],
    [0, 40],
  );
  // and counted so
  const many = { modified_date__lte: '2099-01-01T00:10:00Z' };
  const { rows: manyRows } = await db.query<{ n: number }>(
    `select count(*)::int as n from hook_events where modified_date <= $1`,
    [many.modified_date__lte],
  );
  assert.ok(manyRows[0]!.n > 10_000, `${manyRows[0]!.n} events`);
  assert.equal(await countHookEvents(db, ADMIN, many), manyRows[0]!.n);
});

test("a page and a count of many events modified before a date keep to the blocks of ids of their created dates, without the table's statistics", async () => {
  // an event is never modified before it was created (migration 028): read as
  // PostgreSQL chose, more than INDEXED_ROWS events modified before a date were read by
  // id past every newer event (the oldest 50,000 modified of 1,200,000: 163 ms on
  // PostgreSQL; for their user, webhook by webhook, 918), and counted off the whole
  // webhook's index (138-271 ms)
  const old = (await ensureUser(db, 'plan-modified-old', false)).id;
  const [hook, other] = [await insertWebhook(db, old), await insertWebhook(db, old)];
  await aBlockApart();
  // 15,000 events a minute apart, each modified an hour after it was created
  await db.query(
    `insert into hook_events (webhook_id, uuid, event_type, delivered, retry_count,
                              created_date, modified_date)
     select ($1::int[])[1 + (g % 5 = 0)::int], gen_random_uuid(), 'parcel.old', g % 10 <> 0, 1,
            c.at, c.at + interval '1 hour'
     from generate_series(1, 15000) g,
          lateral (select timestamptz '1990-01-01T00:00:00Z' + g * interval '1 minute' as at) c`,
    [[hook, other]],
  );
  // and newer ones, 10,000 of the same webhook's
  await db.query(
    `insert into hook_events (webhook_id, uuid, event_type, delivered, retry_count)
     select $1, gen_random_uuid(), 'parcel.old', true, 1 from generate_series(1, 10000)`,
    [hook],
  );
  await newerCrowd(10_000);
  await withoutStatistics();
  // modified by 1990-01-09T11:00: the first 12,120, created by 10:00 (the first 12,180)
  const before = { modified_date__lte: '1990-01-09T11:00:00Z' };
  const user: Scope = { userId: old, isAdmin: false };
  const filters: HookEventFilters[] = [
    before,
    { ...before, webhook: hook },
    { ...before, delivered: false },
    { ...before, created_date__gte: '1990-01-05T00:00:00Z' },
  ];
  const { rows } = await db.query<{ n: number }>(
    'select count(*)::int as n from hook_events where modified_date <= $1',
    [before.modified_date__lte],
  );
  assert.equal(rows[0]!.n, 12_120);
  // the table's rows each statement read: for a page by id, the first window of its
  // span of ids and the page's rows, and with a created_date range its events, off the
  // index by date (dateRangeRead); for a count, the span's events, at most those created
  // by the date and the rest of their last block of 4,096 ids
  for (const f of filters)
    for (const scope of [ADMIN, user]) {
      const what = `${JSON.stringify(scope)} ${JSON.stringify(f)}`;
      const listed: Sent[] = [];
      const page = await listHookEvents(noting(db, new Map(), listed), scope, f, [], 20, 0);
      assert.deepEqual(
        page.map((e) => e.id),
        await expected(scope, f),
        what,
      );
      const read = await tableRowsRead(listed);
      assert.ok(read <= (f.created_date__gte ? 7_000 : 1_500), `${what}: page read ${read}`);
      const counted: Sent[] = [];
      const { rows: plain } = await db.query<{ n: number }>(
        `select count(*)::int as n from hook_events e join webhooks w on w.id = e.webhook_id
         where e.modified_date <= $1 and ($2::int is null or e.webhook_id = $2)
           and ($3::bool is null or e.delivered = $3)
           and ($4::timestamptz is null or e.created_date >= $4) and ($5 or w.user_id = $6)`,
        [
          f.modified_date__lte,
          f.webhook ?? null,
          f.delivered ?? null,
          f.created_date__gte ?? null,
          scope.isAdmin,
          scope.userId,
        ],
      );
      assert.equal(await countHookEvents(noting(db, new Map(), counted), scope, f), plain[0]!.n);
      const countRead = await tableRowsRead(counted);
      assert.ok(countRead <= 12_180 + 4_096, `${what}: count read ${countRead}`);
    }
  await assertPages([ADMIN, user], filters, [0, 100]);
});

test("an object's page and count read its events off the object's index, without the table's statistics", async () => {
  // without statistics PostgreSQL takes an object to have a share of the events: it read
  // the table backwards by id for the page, past every newer event (with 1,200,000
  // stored, 381-396 ms on PostgreSQL), and with a webhook the webhook's whole index
  // beside the object's, for the page and the count
  const parcels = await insertWebhook(db, owner);
  const quiet = (await ensureUser(db, 'plan-object-quiet', false)).id;
  const theirs = await insertWebhook(db, quiet);
  await db.query(
    `insert into hook_events (webhook_id, uuid, event_type, object_id, delivered, retry_count,
                              modified_date)
     select ($1::int[])[1 + g % 2], gen_random_uuid(),
            case when g % 3 = 0 then 'package.shipped' else 'package.created' end,
            to_jsonb('parcel-7'::text), g % 4 <> 0, 1,
            timestamptz '2030-01-01T00:00:00Z' + g * interval '1 minute'
     from generate_series(1, 6) g`,
    [[parcels, theirs]],
  );
  // newer events of the same webhooks, of other objects, and more than INDEXED_ROWS of
  // one object (a number, as JSON)
  await db.query(
    `insert into hook_events (webhook_id, uuid, event_type, object_id, delivered, retry_count)
     select $1, gen_random_uuid(), 'package.created',
            case when g % 2 = 0 then to_jsonb(4242) else to_jsonb('parcel-' || (g + 10)) end,
            true, 1
     from generate_series(1, 20002) g`,
    [parcels],
  );
  await vacuumed(db, 'hook_events', { analyze: false });
  // the statistics of an index's expression are the index's own
  await db.query(
    `delete from pg_statistic
     where starelid in ('hook_events'::regclass, 'hook_events_object_idx'::regclass)`,
  );
  const stranger: Scope = { userId: quiet, isAdmin: false };
  for (const [scope, f] of [
    [ADMIN, { object_id: 'parcel-7' }],
    [ADMIN, { object_id: 'no-such-parcel' }],
    [ADMIN, { object_id: 'parcel-7', webhook: parcels }],
    [ADMIN, { object_id: 'parcel-7', webhook: parcels, delivered: false }],
    [ADMIN, { object_id: 'parcel-7', event_type: 'package.shipped' }],
    [stranger, { object_id: 'parcel-7' }],
    [ADMIN, { object_id: 'parcel-7', modified_date__gte: '2030-01-01T00:03:00Z' }],
  ] as [Scope, HookEventFilters][]) {
    const { sent } = await firstPage(f, false, scope);
    // the object's 6 events off its index (its entries, then its rows), a lookup each
    // and the page's rows; the count reads the index once more, to choose: at most 6
    // reads of 6 (EXPLAIN gives PGlite's rows of a lookup as an average over its loops),
    // where by id or off the webhook's index the newer 20,002 were read
    const paged = await entriesRead(sent);
    assert.ok(paged <= 6 * 6, `${JSON.stringify(f)}: ${paged} rows and entries read`);
    const seen = new Map<string, Sent>();
    const n = await countHookEvents(noting(db, seen), scope, f);
    const { rows } = await db.query<{ n: number }>(
      `select count(*)::int as n from hook_events e join webhooks w on w.id = e.webhook_id
       where (e.object_id #>> '{}') = $1 and ($2::int is null or e.webhook_id = $2)
         and ($3::bool is null or e.delivered = $3) and ($4::text is null or e.event_type = $4)
         and ($5::timestamptz is null or e.modified_date >= $5) and ($6 or w.user_id = $7)`,
      [
        f.object_id,
        f.webhook ?? null,
        f.delivered ?? null,
        f.event_type ?? null,
        f.modified_date__gte ?? null,
        scope.isAdmin,
        scope.userId,
      ],
    );
    assert.equal(n, rows[0]!.n, `count of ${JSON.stringify(f)}`);
    const counted = await entriesRead(seen.get(UNNAMED)!);
    assert.ok(counted <= 6 * 6, `count of ${JSON.stringify(f)}: ${counted} rows and entries read`);
  }
  // an object of more than INDEXED_ROWS events is read as before, and counted so
  const crowd = { object_id: '4242' };
  await assertPages(
    [ADMIN, stranger],
    [crowd, { ...crowd, webhook: parcels }, { object_id: 'parcel-7', delivered: true }],
    [0, 20],
  );
  assert.equal(await countHookEvents(db, ADMIN, crowd), 10_001);
  assert.equal(await countHookEvents(db, stranger, crowd), 0);
});

test("a page sorted by created_date, or by modified_date oldest first, reads the index by date from the dates of its webhooks' blocks", async () => {
  // read off the index by date, a webhook's page passed every event of the others
  // between the end it starts from and the webhook's first (with 1,000,000 events of
  // one webhook and then 200,000 of another, the second's oldest first: 158 ms on
  // PostgreSQL, and 202 by modified_date, which is never before created_date)
  const quiet = (await ensureUser(db, 'plan-created-quiet', false)).id;
  const [late, early] = [await insertWebhook(db, quiet), await insertWebhook(db, owner)];
  // each webhook's events in blocks of ids of their own (migration 022), dated after
  // and before every other event; those attempted modified up to 6 hours after, out of
  // the order of their ids
  const apart = async (webhookId: number, n: number, type: string, from: string) => {
    await aBlockApart();
    await db.query(
      `insert into hook_events (webhook_id, uuid, event_type, delivered, retry_count,
                                created_date, modified_date)
       select $1, gen_random_uuid(), $3, g % 3 <> 0, 1, c.at,
              c.at + case when g % 3 <> 0 then (g * 5 % 7) * interval '1 hour' else '0' end
       from generate_series(1, $2::int) g,
            lateral (select $4::timestamptz + g * interval '1 minute' as at) c`,
      [webhookId, n, type, from],
    );
  };
  await apart(late, 300, 'parcel.late', '2110-01-01T00:00:00Z');
  await apart(early, 300, 'parcel.early', '2001-01-01T00:00:00Z');
  // enough others for the test to stand alone: in a table of 22,600 events PostgreSQL
  // read a type's page by reading every event and sorting, which a small table warrants
  await apart(webhook, 40_000, 'parcel.middle', '2050-01-01T00:00:00Z');
  await withoutStatistics();
  const { rows: all } = await db.query<{ n: number }>('select count(*)::int as n from hook_events');
  const user: Scope = { userId: quiet, isAdmin: false };
  for (const [scope, f, desc, field = 'created_date'] of [
    [ADMIN, { webhook: late }, false],
    [ADMIN, { webhook: late, delivered: false }, false],
    [user, {}, false],
    [user, { event_type: 'parcel.late' }, false],
    [ADMIN, { event_type: 'parcel.late' }, false],
    [ADMIN, { webhook: early }, true],
    [ADMIN, { event_type: 'parcel.early' }, true],
    [ADMIN, { webhook: early, delivered: true }, true],
    [ADMIN, { webhook: late }, false, 'modified_date'],
    [ADMIN, { webhook: late, delivered: true }, false, 'modified_date'],
    [user, {}, false, 'modified_date'],
    [ADMIN, { event_type: 'parcel.late' }, false, 'modified_date'],
  ] as [Scope, HookEventFilters, boolean, ('created_date' | 'modified_date')?][]) {
    const ordering: Ordering = [{ field, desc }];
    for (const offset of [0, 290]) {
      const seen = new Map<string, Sent>();
      const page = await listHookEvents(noting(db, seen), scope, f, ordering, 20, offset);
      const { rows } = await db.query<{ id: number }>(
        `select e.id::int as id from hook_events e join webhooks w on w.id = e.webhook_id
         where ($1::int is null or e.webhook_id = $1) and ($2::bool is null or e.delivered = $2)
           and ($3::text is null or e.event_type = $3) and ($4 or w.user_id = $5)
         order by e.${field} ${desc ? 'desc' : 'asc'}, e.id ${desc ? 'desc' : 'asc'}
         limit 20 offset $6`,
        [
          f.webhook ?? null,
          f.delivered ?? null,
          f.event_type ?? null,
          scope.isAdmin,
          scope.userId,
          offset,
        ],
      );
      const what = `${JSON.stringify(scope)} ${JSON.stringify(f)} ${field} desc ${desc} offset ${offset}`;
      assert.deepEqual(
        page.map((e) => e.id),
        rows.map((r) => r.id),
        what,
      );
      assert.equal(page.length, offset === 0 ? 20 : f.delivered === undefined ? 10 : 0, what);
      // the first page: the webhook's events from the page's end, and the page's rows,
      // at most its 300 and 20, where from the index's end the others' were read first
      // (a deeper one, in a table this small, PostgreSQL may read whole and sort)
      if (offset > 0) continue;
      const read = await rowsRead(db, seen.get(UNNAMED)!, 'hook_events');
      assert.ok(read <= 300 + 20, `${what}: ${read} of ${all[0]!.n} rows read`);
    }
  }
});

test("a page by id of a large created_date range reads through the span of its ids, without the table's statistics", async () => {
  // PostgreSQL took a range with both ends to hold a few dozen events, and read all of
  // them off the index by date and sorted them: 800,000 of 1,200,000 took 144 ms on
  // PostgreSQL, with a webhook 286, with a status 146
  const quiet = (await ensureUser(db, 'plan-range-quiet', false)).id;
  const [dense, crowd] = [await insertWebhook(db, owner), await insertWebhook(db, owner)];
  const elsewhere = await insertWebhook(db, quiet);
  // 24,000 events from the first id of a block of ids (migration 022), a minute apart,
  // then 8,192 of another webhook; one in ten attempted and answered 500
  await aBlockApart();
  await db.query(
    `insert into hook_events (webhook_id, uuid, event_type, delivered, retry_count,
                              response_http_status, created_date, modified_date)
     select case when g > 24000 then $2::int else $1::int end, gen_random_uuid(), 'parcel.dense',
            g % 10 <> 0, 1, case when g % 10 = 0 then 500 else 200 end, c.at, c.at
     from generate_series(1, 24000 + 8192) g,
          lateral (select timestamptz '2040-01-01T00:00:00Z' + g * interval '1 minute' as at) c`,
    [dense, crowd],
  );
  // another user's, older, in blocks after those
  await aBlockApart();
  await db.query(
    `insert into hook_events (webhook_id, uuid, event_type, delivered, retry_count,
                              created_date, modified_date)
     select $1, gen_random_uuid(), 'parcel.dense', true, 1, timestamptz '2039-01-01T00:00:00Z',
            timestamptz '2039-01-01T00:00:00Z'
     from generate_series(1, 50) g`,
    [elsewhere],
  );
  await withoutStatistics();
  // the events after the first block's 4,096, in blocks that hold no other
  const range = {
    created_date__gte: '2040-01-03T20:17:00Z',
    created_date__lte: '2040-02-01T00:00:00Z',
  };
  const { rows } = await db.query<{ n: number }>(
    `select count(*)::int as n from hook_events
     where created_date between $1 and $2`,
    [range.created_date__gte, range.created_date__lte],
  );
  assert.equal(rows[0]!.n, 24_000 + 8192 - 4096);
  const stranger: Scope = { userId: quiet, isAdmin: false };
  // each filter with the most rows and index entries its first page may read, by every
  // statement sent, both ways: the page, the events passed for it and a lookup each,
  // where the range's 28,096 were read and sorted
  // a window of ids PostgreSQL reads as a bitmap is read whole, its entries and its
  // rows (the first, of 1,024 ids), where one read in order stops at the page
  const window = 2 * 1024 + 100;
  for (const [f, most, scope] of [
    [range, window],
    [{ ...range, webhook: dense }, 100],
    [{ ...range, webhook: elsewhere }, 100],
    [{ ...range, delivered: false }, window],
    [{ ...range, webhook: dense, delivered: false }, 100],
    [{ ...range, response_http_status: 500 }, 100],
    // newest first, the entries of the other webhook's 819 undelivered events first
    [{ ...range, webhook: dense, response_http_status: 500 }, 100 + 819],
    [{ ...range, undelivered: true }, 100],
  ] as [HookEventFilters, number, Scope?][]) {
    for (const asc of [false, true]) {
      const { all } = await firstPage(f, asc, scope);
      let read = 0;
      for (const sent of all) read += await entriesRead(sent);
      assert.ok(read <= most, `${JSON.stringify(f)} asc ${asc}: ${read} rows and entries read`);
    }
  }
  // a status none has: the undelivered events' entries checked in their index alone,
  // where read window by window each one's row was read from the table for its status
  const { all: none } = await firstPage({ ...range, response_http_status: 404 });
  let rowsOfNone = 0;
  for (const sent of none) rowsOfNone += await entriesRead(sent, true);
  assert.ok(rowsOfNone <= 20, `?response_http_status=404: ${rowsOfNone} rows of the table read`);
  const filters = [
    range,
    { ...range, webhook: dense, delivered: false },
    { ...range, response_http_status: 500 },
    { ...range, response_http_status: 404 },
    { ...range, event_type: 'parcel.dense' },
  ];
  // past the first windows: 1,120 of one in ten, read through 12,000 ids and more
  await assertPages([ADMIN, stranger], filters, [0, 40, 1100]);
  // an event dated inside the range 100,000 ids on: the span reaches its block, its
  // events are then less than half its ids (not dense), and the pages are read as
  // PostgreSQL chooses
  await db.query(
    `select setval(pg_get_serial_sequence('hook_events', 'id'),
                   (select max(id) from hook_events) + 100000)`,
  );
  await db.query(
    `insert into hook_events (webhook_id, uuid, event_type, delivered, retry_count, created_date,
                              modified_date)
     values ($1, gen_random_uuid(), 'parcel.dense', false, 1, '2040-01-20T00:00:00Z',
             '2040-01-20T00:00:00Z')`,
    [elsewhere],
  );
  await assertPages([ADMIN, stranger], filters, [0, 40]);
});

test('a page sorted by status reads each status in order off the index of its events, without sorting every event', async () => {
  // no index holds every event by status: PostgreSQL read every match and sorted them,
  // 216-304 ms for the first page of 1,200,000 events or of a webhook's 1,000,000
  const [mine, theirs] = [
    (await ensureUser(db, 'plan-status', false)).id,
    (await ensureUser(db, 'plan-status-other', false)).id,
  ];
  const quiet = (await ensureUser(db, 'plan-status-quiet', false)).id;
  const [sorted, other] = [await insertWebhook(db, mine), await insertWebhook(db, theirs)];
  // every kind of status: 200; another 2xx; failures above the 2xx and below; none,
  // never answered or not yet attempted; the newest 300 not yet attempted
  await db.query(
    `insert into hook_events (webhook_id, uuid, event_type, delivered, retry_count,
                              response_http_status)
     select $1, gen_random_uuid(), 'parcel.sorted', coalesce(s between 200 and 299, false),
            case when g > 5700 then null else 1 + (s is not null and s not between 200 and 299)::int end, s
     from generate_series(1, 6000) g
     cross join lateral (select case
       when g > 5700 or g % 200 = 3 then null
       when g % 90 = 0 then 404 when g % 30 = 0 then 503 when g % 10 = 0 then 500
       when g % 100 = 1 then 204 when g % 250 = 7 then 102 else 200 end as s) x`,
    [sorted],
  );
  await db.query(
    `insert into hook_events (webhook_id, uuid, event_type, delivered, retry_count,
                              response_http_status)
     select $1, gen_random_uuid(), 'parcel.other', g % 5 <> 0, 1 + (g % 5 = 0)::int,
            case when g % 5 = 0 then 502 else 200 end
     from generate_series(1, 2000) g`,
    [other],
  );
  await withoutStatistics();
  const them: Scope = { userId: theirs, isAdmin: false };
  const stranger: Scope = { userId: quiet, isAdmin: false };
  // the rows of the table each first page read, where all of the webhook's 6,000 (or
  // 2,000) were read and sorted; then every page, at offsets within a status, across the
  // parts and past the last
  await assertSortedBy(
    'response_http_status',
    [
      [{ webhook: sorted }, 100],
      [{ webhook: other }, 100],
      [{ webhook: sorted, delivered: false }, 100],
      [{ webhook: sorted, undelivered: true }, 100],
      [{ event_type: 'parcel.sorted' }, 100],
      [{}, 100, them],
    ],
    [
      {},
      { webhook: sorted },
      { webhook: other },
      { delivered: false },
      { delivered: true },
      { undelivered: true },
      { event_type: 'parcel.sorted' },
      { webhook: sorted, delivered: false },
      { webhook: 2 ** 31 - 1 },
    ],
    [ADMIN, them, stranger],
    [0, 190, 5390, 5990, 7990],
  );
  const byStatus = (desc: boolean): Ordering => [{ field: 'response_http_status', desc }];
  // a webhook id no event can have matches none, as by id
  for (const desc of [true, false])
    assert.deepEqual(
      await listHookEvents(db, ADMIN, { webhook: 2 ** 40 }, byStatus(desc), 20, 0),
      [],
    );
  // with a status asked for, the page sorted by it is the page by id
  const failed = await listHookEvents(
    db,
    ADMIN,
    { response_http_status: 503 },
    byStatus(true),
    20,
    0,
  );
  assert.deepEqual(
    failed.map((e) => e.id),
    await expected(ADMIN, { response_http_status: 503 }),
  );
  assert.equal(failed.length, 20);
});

test('a page sorted by retry_count reads those attempted again off their index in order, the others by id', async () => {
  // no index held events by their count: PostgreSQL read every match and sorted them,
  // 249-335 ms for the first page of 1,200,000 events or of a webhook's
  const [mine, theirs] = [
    (await ensureUser(db, 'plan-retries', false)).id,
    (await ensureUser(db, 'plan-retries-other', false)).id,
  ];
  const quiet = (await ensureUser(db, 'plan-retries-quiet', false)).id;
  const [retried, other] = [await insertWebhook(db, mine), await insertWebhook(db, theirs)];
  // most delivered at the first attempt; one in ten attempted 2 to 9 times, delivered or
  // not; the newest 300 not yet attempted (no count, as the service leaves it)
  await db.query(
    `insert into hook_events (webhook_id, uuid, event_type, delivered, retry_count,
                              response_http_status)
     select $1, gen_random_uuid(), 'parcel.retried', g <= 5700 and g % 20 <> 0,
            case when g > 5700 then null when g % 10 = 0 then 2 + g % 8 else 1 end,
            case when g > 5700 then null when g % 20 = 0 then 500 else 200 end
     from generate_series(1, 6000) g`,
    [retried],
  );
  await db.query(
    `insert into hook_events (webhook_id, uuid, event_type, delivered, retry_count,
                              response_http_status)
     select $1, gen_random_uuid(), 'parcel.other', true, 1 + (g % 7 = 0)::int, 200
     from generate_series(1, 2000) g`,
    [other],
  );
  await withoutStatistics();
  const them: Scope = { userId: theirs, isAdmin: false };
  const stranger: Scope = { userId: quiet, isAdmin: false };
  // the rows of the table each first page read, where all of the webhook's 6,000 (or
  // 2,000) were read and sorted; then every page, at offsets within a count, across the
  // parts and past the last
  await assertSortedBy(
    'retry_count',
    [
      [{ webhook: retried }, 100],
      [{ webhook: other }, 100],
      [{ webhook: retried, delivered: false }, 100],
      // oldest first, its undelivered events (285 answered 500, 300 not yet attempted)
      // may be read for those attempted once (none), each row from the table for its
      // count, before those attempted more
      [{ webhook: retried, undelivered: true }, 100 + 585],
      [{ webhook: retried, response_http_status: 500 }, 100 + 585],
      [{ event_type: 'parcel.retried' }, 100],
      [{}, 100, them],
    ],
    [
      {},
      { webhook: retried },
      { webhook: other },
      { delivered: false },
      { delivered: true },
      { undelivered: true },
      { response_http_status: 500 },
      { event_type: 'parcel.retried' },
      { webhook: retried, delivered: false },
      { webhook: 2 ** 31 - 1 },
    ],
    [ADMIN, them, stranger],
    [0, 150, 590, 5690, 7990],
  );
});

test("a page sorted by status or by retry count with a created_date range keeps each part's read to the range's span of ids", async () => {
  // read as one statement, every event of the range was sorted (500,000 of 1,200,000:
  // 65-149 ms on PostgreSQL); read part by part off their indexes in order, a range of
  // old events would look up every newer entry first
  const ranged = (await ensureUser(db, 'plan-sorted-range', false)).id;
  const hook = await insertWebhook(db, ranged);
  await aBlockApart();
  // 6,000 old events a minute apart, then 20,000 new ones, each with every kind of
  // status and retry count (as in the test of pages sorted by status)
  await db.query(
    `insert into hook_events (webhook_id, uuid, event_type, delivered, retry_count,
                              response_http_status, created_date, modified_date)
     select $1, gen_random_uuid(), 'parcel.ranged', coalesce(s between 200 and 299, false),
            case when g % 200 = 3 then null
                 else 1 + (s is not null and s not between 200 and 299)::int + (g % 7 = 0)::int
            end,
            s, c.at, c.at
     from generate_series(1, 26000) g
     cross join lateral (select case
       when g % 200 = 3 then null
       when g % 90 = 0 then 404 when g % 30 = 0 then 503 when g % 10 = 0 then 500
       when g % 100 = 1 then 204 when g % 250 = 7 then 102 else 200 end as s) x
     cross join lateral (select case when g > 6000 then now()
       else timestamptz '1985-01-01T00:00:00Z' + g * interval '1 minute' end as at) c`,
    [hook],
  );
  await withoutStatistics();
  const user: Scope = { userId: ranged, isAdmin: false };
  const oldest = { created_date__lte: '1985-01-02T00:00:00Z' };
  const middle = {
    created_date__gte: '1985-01-02T00:00:00Z',
    created_date__lte: '1985-01-04T00:00:00Z',
  };
  const ranges: HookEventFilters[] = [
    oldest,
    middle,
    { ...middle, webhook: hook },
    { ...oldest, delivered: false },
    { ...middle, delivered: true },
    { ...middle, undelivered: true },
    { ...oldest, event_type: 'parcel.ranged' },
  ];
  for (const field of ['response_http_status', 'retry_count'] as const)
    await assertSortedBy(
      field,
      // the rows of the table each first page read: without the span, up to 608
      [
        [oldest, 200],
        [middle, 200],
        [{ ...middle, webhook: hook }, 200],
        [oldest, 200, user],
      ],
      ranges,
      [ADMIN, user],
      [0, 30, 1400],
    );
});
