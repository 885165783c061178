import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { isoMicro } from '../../src/core/clock.js';
import { foldEventCounts } from '../../src/maintenance/counts.js';
import { purgeOldEvents } from '../../src/maintenance/retention.js';
import { enqueueCommitted } from '../../src/queue/enqueue.js';
import { recordAttempts, type AttemptOutcome } from '../../src/queue/record.js';
import type { Db } from '../../src/store/db.js';
import { migrate } from '../../src/store/migrate.js';
import { ensureUser } from '../../src/store/tokens.js';
import {
  countHookEvents,
  PER_WEBHOOK_MAX,
  type HookEventFilters,
} from '../../src/store/hook-events.js';
import type { Scope } from '../../src/store/webhooks.js';
import { noting, rowsRead, testDb, UNNAMED, vacuumed, type Sent } from '../helpers/db.js';
import { insertOtherWebhooks, insertWebhook, newHookEvent } from '../helpers/rows.js';

let db: Db;
let drop: () => Promise<void>;
let alice: number;
let bob: number;
/** alice's: package.created, and package.shipped events of a pattern too */
let created: number;
/** alice's: package.shipped */
let shipped: number;
/** bob's */
let other: number;

before(async () => {
  ({ db, drop } = await testDb());
  alice = (await ensureUser(db, 'alice', false)).id;
  bob = (await ensureUser(db, 'bob', false)).id;
  created = await insertWebhook(db, alice);
  shipped = await insertWebhook(db, alice);
  await db.query(`update webhooks set event_type = 'package.shipped' where id = $1`, [shipped]);
  other = await insertWebhook(db, bob);
});
after(() => drop());

/** The content types of the seeded catalog the events name. */
const PACKAGE = 4;
const ORDER = 3;

/**
 * Publishes `n` events of `eventType` to `webhook`, in one statement as a group commit: a
 * third of them of content type package, a third order, a third none.
 */
async function publish(webhook: number, n: number, eventType = 'package.created') {
  const events = Array.from({ length: n }, (_, i) => ({
    ...newHookEvent(webhook, i),
    eventType,
    contentTypeId: i % 3 === 0 ? null : i % 3 === 1 ? PACKAGE : ORDER,
  }));
  await enqueueCommitted(db, events, isoMicro(Date.now()));
}

/** The events matching `f` in `scope`, counted one by one from the table itself. */
async function counted(scope: Scope, f: HookEventFilters): Promise<number> {
  const { rows } = await db.query<{ n: number }>(
    `select count(*)::int as n from hook_events e join webhooks w on w.id = e.webhook_id
     where ($1::bigint is null or e.webhook_id = $1) and ($2::text is null or e.event_type = $2)
       and ($3::bool is null or e.delivered = $3) and ($4::bool or w.user_id = $5)
       and ($6::bigint is null or e.content_type_id = $6)
       and (not $7 or (not e.delivered and e.retry_count > 0))
       and ($8::int is null or e.response_http_status = $8)
       and ($9::timestamptz is null or e.created_date >= $9)
       and ($10::timestamptz is null or e.created_date <= $10)
       and ($11::timestamptz is null or e.modified_date >= $11)
       and ($12::timestamptz is null or e.modified_date <= $12)`,
    [
      f.webhook ?? null,
      f.event_type ?? null,
      f.delivered ?? null,
      scope.isAdmin,
      scope.userId,
      f.content_type ?? null,
      f.undelivered ?? false,
      f.response_http_status ?? null,
      f.created_date__gte ?? null,
      f.created_date__lte ?? null,
      f.modified_date__gte ?? null,
      f.modified_date__lte ?? null,
    ],
  );
  return rows[0]!.n;
}

/** An admin's scope, alice's and bob's. */
const everyScope = (): Scope[] => [
  { userId: 0, isAdmin: true },
  { userId: alice, isAdmin: false },
  { userId: bob, isAdmin: false },
];

/** countHookEvents agrees with the table for every scope and filter the counts serve. */
async function assertCountsRight(label: string): Promise<void> {
  // the date of the middle event by id, which publishing in order gives the middle date
  const { rows: middle } = await db.query<{ at: string | null }>(
    `select (select oms_ts(created_date) from hook_events order by id
             offset (select count(*) / 2 from hook_events) limit 1) as at`,
  );
  const mid = middle[0]!.at ?? new Date().toISOString();
  const scopes = everyScope();
  const filters: HookEventFilters[] = [
    {},
    { webhook: created },
    { webhook: shipped },
    { webhook: other },
    { event_type: 'package.shipped' },
    { webhook: created, event_type: 'package.shipped' },
    { content_type: PACKAGE },
    { content_type: ORDER, webhook: created },
    { content_type: PACKAGE, delivered: true },
    { delivered: true },
    { delivered: true, webhook: created },
    { delivered: true, event_type: 'package.created' },
    { delivered: false },
    { delivered: false, webhook: created },
    // webhooks all of whose events are of the type or content type (shipped's of
    // package.shipped, other's of package.created), and webhooks with some of others
    { delivered: false, event_type: 'package.shipped' },
    { delivered: false, event_type: 'package.created' },
    { delivered: false, webhook: created, event_type: 'package.shipped' },
    { delivered: false, content_type: ORDER },
    { delivered: true, event_type: 'package.shipped' },
    { delivered: true, event_type: 'package.shipped', content_type: PACKAGE },
    // the undelivered list: attempted and not delivered
    { undelivered: true, event_type: 'package.shipped' },
    { undelivered: true, event_type: 'package.created' },
    { undelivered: true, event_type: 'package.created', webhook: created },
    { undelivered: true, event_type: 'package.none' },
    // a status other than 2xx is counted among the undelivered events alone
    { response_http_status: 500 },
    { response_http_status: 503 },
    { response_http_status: 404 },
    { response_http_status: 200 },
    { response_http_status: 500, webhook: created },
    { response_http_status: 500, event_type: 'package.shipped' },
    { response_http_status: 500, undelivered: true },
    { response_http_status: 500, delivered: true },
    { response_http_status: 200, delivered: false },
    // a 2xx: the delivered events less those of another 2xx, or those of it alone
    { response_http_status: 200, webhook: created },
    { response_http_status: 200, webhook: other },
    { response_http_status: 200, event_type: 'package.shipped' },
    { response_http_status: 200, content_type: PACKAGE, delivered: true },
    { response_http_status: 204 },
    { response_http_status: 204, webhook: shipped },
    { response_http_status: 204, event_type: 'package.created' },
    { response_http_status: 202, webhook: created, event_type: 'package.created' },
    { response_http_status: 201 },
    { response_http_status: 204, delivered: false },
    { response_http_status: 204, undelivered: true },
    // dates: off the blocks of ids (migrations 022 and 023), and with `delivered` off
    // each webhook's undelivered events of them
    { created_date__gte: mid },
    { created_date__lte: mid },
    { created_date__gte: mid, webhook: created },
    { created_date__lte: mid, webhook: other },
    { created_date__lte: mid, event_type: 'package.shipped' },
    { created_date__gte: mid, content_type: PACKAGE },
    { created_date__gte: mid, webhook: created, event_type: 'package.shipped' },
    { created_date__gte: mid, event_type: 'package.shipped', delivered: false },
    { created_date__gte: mid, delivered: true },
    { created_date__lte: mid, delivered: false },
    { created_date__lte: mid, delivered: false, webhook: created },
    { created_date__gte: mid, delivered: true, event_type: 'package.shipped' },
    { created_date__lte: mid, delivered: true, content_type: ORDER },
    { created_date__gte: mid, undelivered: true },
    { created_date__lte: mid, undelivered: true, event_type: 'package.shipped' },
    { created_date__gte: mid, response_http_status: 500, webhook: created },
    { created_date__lte: mid, response_http_status: 200 },
    { created_date__gte: mid, undelivered: true, delivered: true },
    { modified_date__gte: mid },
    { modified_date__gte: mid, webhook: created, delivered: false },
    { modified_date__gte: mid, event_type: 'package.shipped' },
    { modified_date__lte: mid, webhook: other },
    { created_date__gte: mid, undelivered: true, content_type: ORDER },
    { created_date__lte: mid, response_http_status: 500, content_type: PACKAGE },
    { webhook: 2 ** 40 },
  ];
  for (const scope of scopes) {
    for (const f of filters) {
      assert.equal(
        await countHookEvents(db, scope, f),
        await counted(scope, f),
        `${label}: ${JSON.stringify(scope)} ${JSON.stringify(f)}`,
      );
    }
  }
}

/**
 * hook_event_counts' lowest and highest ids of each key (migration 019) hold its stored
 * events between them: exactly their lowest and highest when none has been deleted.
 */
async function assertBounds(label: string, exact: boolean): Promise<void> {
  const { rows } = await db.query<{ key: string; low: number; high: number; a: number; b: number }>(
    `select s.key, s.low, s.high, c.a, c.b from (
       select concat_ws('/', webhook_id, event_type, content_type_id) as key,
              min(id)::int as low, max(id)::int as high
       from hook_events group by webhook_id, event_type, content_type_id) s
     left join (
       select concat_ws('/', webhook_id, event_type, content_type_id) as key,
              min(min_id)::int as a, max(max_id)::int as b
       from hook_event_counts group by webhook_id, event_type, content_type_id) c
     on c.key = s.key`,
  );
  assert.ok(rows.length > 0);
  for (const r of rows) {
    if (exact) assert.deepEqual([r.a, r.b], [r.low, r.high], `${label}: ${r.key}`);
    else assert.ok(r.a <= r.low && r.b >= r.high, `${label}: ${JSON.stringify(r)}`);
  }
}

/**
 * hook_event_key_blocks (migration 023) sums, per webhook, event type, content type and
 * block of 4,096 ids, to the events stored there, and holds no key and block without
 * them; folded, in one row each.
 */
async function assertKeyBlocks(label: string, folded: boolean): Promise<void> {
  const key = `concat_ws('/', webhook_id, event_type, content_type_id, block)`;
  const { rows } = await db.query<{ key: string; stored: number | null; n: number; rows: number }>(
    `select k.key, s.stored, k.n, k.rows from (
       select ${key} as key, sum(n)::int as n, count(*)::int as rows
       from hook_event_key_blocks group by webhook_id, event_type, content_type_id, block) k
     full join (
       select concat_ws('/', webhook_id, event_type, content_type_id, id >> 12) as key,
              count(*)::int as stored
       from hook_events group by webhook_id, event_type, content_type_id, id >> 12) s
     on s.key = k.key
     where k.n is distinct from s.stored and (k.n <> 0 or s.stored is not null)
        or ${folded} and k.rows > 1`,
  );
  assert.deepEqual(rows, [], label);
}

/**
 * Records one attempt for each of `ids`: delivered (200), or failed (500, or `status`)
 * and finished.
 */
async function attempt(ids: number[], delivered: boolean, status?: number): Promise<void> {
  const outcomes: AttemptOutcome[] = ids.map((id) => ({
    id,
    at: isoMicro(Date.now()),
    status: status ?? (delivered ? 200 : 500),
    content: delivered ? 'ok' : 'no',
    delivered,
    next: { kind: 'done' },
    durationMs: 1,
    error: null,
    worker: 'counts-test',
    deactivate: false,
  }));
  await recordAttempts(db, 'counts-test', outcomes);
}

const ids = async (webhook: number): Promise<number[]> =>
  (
    await db.query<{ id: number }>(
      'select id::int as id from hook_events where webhook_id = $1 order by id',
      [webhook],
    )
  ).rows.map((r) => r.id);

test('a count read from hook_event_counts equals the events counted one by one, through publishes, attempts, deletes and folds', async () => {
  await publish(created, 30);
  await publish(created, 5, 'package.shipped');
  await publish(shipped, 20, 'package.shipped');
  await publish(other, 12);
  await publish(created, 7);
  const mine = await ids(created);
  await attempt(mine.slice(0, 15), true);
  // delivered with another 2xx than 200 (migration 026's index)
  await attempt(mine.slice(15, 20), true, 204);
  await attempt(mine.slice(20, 25), false);
  // failed again with another status, and failed then delivered
  await attempt(mine.slice(20, 22), false, 503);
  await attempt(mine.slice(24, 25), true, 202);
  await attempt((await ids(shipped)).slice(0, 6), true);
  await attempt((await ids(shipped)).slice(6, 8), true, 204);
  await attempt((await ids(shipped)).slice(8, 11), false);
  await assertCountsRight('published and attempted');
  await assertBounds('published and attempted', true);

  // the unfiltered count is the sum of the rows the publishes wrote, not a count of events
  const seen = new Map<string, Sent>();
  assert.equal(await countHookEvents(noting(db, seen), { userId: 0, isAdmin: true }, {}), 74);
  assert.match(seen.get(UNNAMED)!.sql, /from hook_event_counts e/);
  assert.doesNotMatch(seen.get(UNNAMED)!.sql, /from hook_events/);

  await db.query('delete from hook_events where id = $1', [mine[0]]);
  // retention purges the oldest events of two webhooks
  await db.query(
    `update hook_events set created_date = now() - interval '40 days'
     where id = any($1::bigint[])`,
    [[...mine.slice(1, 4), ...(await ids(other)).slice(0, 5)]],
  );
  // dated back by hand: their blocks of ids take the new dates in (migration 022)
  await assertCountsRight('after some were dated back');
  const purged = await purgeOldEvents(db, {
    before: isoMicro(Date.now() - 30 * 86_400_000),
    batchSize: 2,
    pauseMs: 0,
    keepGoing: () => true,
  });
  assert.equal(purged, 8);
  // a deleted webhook takes its events, and their counts, with it
  await db.query('delete from webhooks where id = $1', [shipped]);
  await assertCountsRight('after deletes');
  await assertKeyBlocks('after deletes', false);

  type Key = { webhook_id: number; event_type: string; content_type_id: number | null };
  const keyed = `group by webhook_id, event_type, content_type_id
    order by webhook_id, event_type, content_type_id nulls first`;
  const rowsOfCounts = async () =>
    (
      await db.query<Key & { rows: number; n: number }>(
        `select webhook_id, event_type, content_type_id, count(*)::int as rows, sum(n)::int as n
         from hook_event_counts ${keyed}`,
      )
    ).rows;
  assert.ok(
    (await rowsOfCounts()).some((r) => r.rows > 1),
    'each publish and delete added a row',
  );
  assert.ok((await foldEventCounts(db)) > 0);
  // one row for each key with events, holding their number; none for the deleted webhook
  const { rows: stored } = await db.query<Key & { n: number }>(
    `select webhook_id, event_type, content_type_id, 1 as rows, count(*)::int as n
     from hook_events ${keyed}`,
  );
  assert.equal(stored.length, 9);
  assert.deepEqual(await rowsOfCounts(), stored);
  assert.equal(await foldEventCounts(db), 0, 'nothing left to fold');
  await assertKeyBlocks('after a fold', true);
  await assertCountsRight('after a fold');
  await assertBounds('after deletes and a fold', false);

  await publish(other, 3);
  await assertCountsRight('published after a fold');
  await assertBounds('published after a fold', false);
});

test('migrations 018, 019, 023 and 024 count the events stored before them, and their ids', async () => {
  await publish(created, 4);
  const before = await counted({ userId: 0, isAdmin: true }, {});
  assert.ok(before > 0);
  // back to the schema before migration 018, with its events kept
  await db.query('drop function oms_hook_events_counted() cascade');
  await db.query('drop table hook_event_counts, hook_event_key_blocks');
  await db.query('delete from oms_migrations where id in (18, 19, 23, 24)');
  assert.deepEqual(await migrate(db), {
    applied: [
      '018_event_counts.sql',
      '019_event_count_bounds.sql',
      '023_event_key_blocks.sql',
      '024_event_key_blocks_by_block.sql',
    ],
  });
  // the keys of the events stored (those of the tests before this one, if they ran)
  const { rows } = await db.query<{ rows: number; keys: number }>(
    `select (select count(*)::int from hook_event_counts) as rows,
            (select count(distinct (webhook_id, event_type, content_type_id))::int
             from hook_events) as keys`,
  );
  assert.ok(rows[0]!.keys > 0);
  assert.equal(rows[0]!.rows, rows[0]!.keys, 'one row per webhook, event type and content type');
  await assertKeyBlocks('after the migration', true);
  await assertCountsRight('after the migration');
  await assertBounds('after the migration', true);
  await publish(created, 2, 'package.shipped');
  await assertBounds('published after the migration', true);
  await assertKeyBlocks('published after the migration', false);
  await assertCountsRight('published after the migration');
});

test('with more webhooks of a type than are counted one by one, its undelivered events still count right', async () => {
  // past PER_WEBHOOK_MAX webhooks the counts check each event's type instead of going
  // webhook by webhook; bob's new webhooks each get two package.shipped events, every
  // other one a package.created as well; a third of them are delivered, a third
  // attempted and not delivered
  const count = PER_WEBHOOK_MAX + 20;
  await insertOtherWebhooks(db, bob, { count });
  await db.query(
    `insert into hook_events (webhook_id, uuid, event_type, content_type_id)
     select w.id, gen_random_uuid(), t, 4
     from webhooks w cross join unnest(array['package.shipped', 'package.shipped',
                                             'package.created']) with ordinality u(t, o)
     where w.user_id = $1 and w.id <> $2 and (o < 3 or w.id % 2 = 0)`,
    [bob, other],
  );
  const { rows } = await db.query<{ id: number; webhook_id: number }>(
    `select e.id::int as id, e.webhook_id from hook_events e
     join webhooks w on w.id = e.webhook_id where w.user_id = $1 and e.webhook_id <> $2`,
    [bob, other],
  );
  assert.equal(new Set(rows.map((r) => r.webhook_id)).size, count);
  await attempt(
    rows.filter((r) => r.id % 6 === 0).map((r) => r.id),
    true,
  );
  await attempt(
    rows.filter((r) => r.id % 6 === 3).map((r) => r.id),
    true,
    204,
  );
  await attempt(
    rows.filter((r) => r.id % 3 === 1).map((r) => r.id),
    false,
  );
  await assertCountsRight(`with ${count} more webhooks`);
});

test('a count of a date range sums the blocks of ids it holds whole, and counts the events of those at its edges', async () => {
  // 20,000 events one minute apart in id order, with ids -30,000 to -10,001: blocks of
  // 4,096 ids -8 to -3 (migration 022), the first and last in part; a third of them
  // alice's package.shipped, the rest bob's package.created, of two content types
  const dated = await insertWebhook(db, bob);
  await db.query(
    `insert into hook_events (id, webhook_id, uuid, event_type, content_type_id, created_date)
     overriding system value
     select -30001 + g, case when g % 3 = 0 then $2::int else $1::int end, gen_random_uuid(),
            case when g % 3 = 0 then 'package.shipped' else 'package.created' end,
            case when g % 5 = 0 then $3::int else $4::int end,
            timestamptz '2021-01-01T00:00:00Z' + g * interval '1 minute'
     from generate_series(1, 20000) g`,
    [dated, created, ORDER, PACKAGE],
  );
  // one in twenty not delivered, half of those attempted; one in seven delivered with
  // 204
  await db.query(
    `update hook_events set delivered = id % 20 <> 0, retry_count = 1,
            response_http_status = case when id % 20 = 0 then 500 when id % 7 = 0 then 204
                                        else 200 end
     where id between -30000 and -10001 and id % 40 <> 0`,
  );
  await vacuumed(db, 'hook_events');
  const at = (g: number) => new Date(Date.parse('2021-01-01T00:00:00Z') + g * 60_000).toISOString();
  const ranges: HookEventFilters[] = [
    { created_date__gte: at(2_000), created_date__lte: at(18_000) },
    { created_date__gte: at(1), created_date__lte: at(20_000) },
    { created_date__gte: at(5_000) },
    { created_date__lte: at(5_000) },
    { created_date__gte: at(100), created_date__lte: at(200) },
    { created_date__lte: '2020-12-31T00:00:00Z' },
    { created_date__gte: '2022-01-01T00:00:00Z' },
    { created_date__gte: at(18_000), created_date__lte: at(2_000) },
  ];
  const scopes = everyScope();
  const keys: HookEventFilters[] = [
    {},
    { webhook: dated },
    { webhook: created },
    { event_type: 'package.shipped' },
    { event_type: 'package.created', content_type: ORDER },
    { webhook: created, event_type: 'package.created' },
    { delivered: false },
    { delivered: true },
    { delivered: true, webhook: dated },
    { delivered: false, event_type: 'package.shipped' },
    { delivered: true, event_type: 'package.created', content_type: ORDER },
    { undelivered: true },
    { undelivered: true, event_type: 'package.shipped' },
    { response_http_status: 500, webhook: dated },
    { response_http_status: 200 },
    { response_http_status: 204, webhook: dated },
  ];
  const assertRanges = async (label: string) => {
    for (const scope of scopes)
      for (const range of ranges)
        for (const key of keys) {
          const f = { ...range, ...key };
          assert.equal(
            await countHookEvents(db, scope, f),
            await counted(scope, f),
            `${label}: ${JSON.stringify(scope)} ${JSON.stringify(f)}`,
          );
        }
  };
  await assertRanges('as written');
  // 16,001 events, the whole blocks summed, the two at its edges read, 4,096 ids apiece,
  // for an admin, a user and a type; counted off the index by date, all 16,001 entries
  const assertRead = async (scope: Scope, f: HookEventFilters, n: number, most = 2 * 4_096) => {
    const seen = new Map<string, Sent>();
    assert.equal(await countHookEvents(noting(db, seen), scope, f), n);
    const read = await rowsRead(db, seen.get(UNNAMED)!, 'hook_events');
    assert.ok(read <= most, `${JSON.stringify(f)}: ${read} rows of hook_events read`);
  };
  await assertRead(scopes[0]!, ranges[0]!, 16_001);
  await assertRead(scopes[2]!, ranges[0]!, 10_667);
  await assertRead(scopes[0]!, { ...ranges[0]!, event_type: 'package.shipped' }, 5_334);
  // an admin's type reads the rows of totals by key of the blocks held whole alone, off
  // their index by block (migration 024), not those of every webhook's other blocks
  // (the test before left a row each for more than PER_WEBHOOK_MAX webhooks)
  {
    const f = { ...ranges[0]!, event_type: 'package.shipped' };
    const seen = new Map<string, Sent>();
    await countHookEvents(noting(db, seen), scopes[0]!, f);
    const { rows } = await db.query<{ n: number }>(
      `select count(*)::int as n from hook_event_key_blocks where block between -8 and -3`,
    );
    const read = await rowsRead(db, seen.get(UNNAMED)!, 'hook_event_key_blocks');
    assert.ok(read <= rows[0]!.n, `${read} rows of hook_event_key_blocks read`);
  }
  // with `delivered`, the webhook's undelivered events in the range's blocks read too
  // (one in twenty), not every event of the range off the index by date (the webhook's
  // 13,334 of the first; the 5,000 of the second, whose blocks -8 and -7 hold 5,424);
  // the undelivered list's (one in forty) for every webhook at once
  for (const [f, most] of [
    [{ ...ranges[0]!, webhook: dated, delivered: true }, 2 * 4_096 + 20_000 / 20],
    [{ ...ranges[3]!, webhook: dated, delivered: false }, 5_424 / 20],
    [{ ...ranges[3]!, undelivered: true }, Math.ceil(5_424 / 40)],
  ] as const)
    await assertRead(scopes[0]!, f, await counted(scopes[0]!, f), most);

  // a 2xx without a range: the webhook's delivered events (its totals less its
  // undelivered ones) less those delivered with another 2xx, read off their index
  // (migration 026), not its 13,334 events; another 2xx, those of it alone
  {
    const stored = async (webhook: number) => {
      const { rows } = await db.query<{ all: number; other: number; fail: number }>(
        `select count(*)::int as all,
                (count(*) filter (where delivered and response_http_status <> 200))::int as other,
                (count(*) filter (where not delivered))::int as fail
         from hook_events where webhook_id = $1`,
        [webhook],
      );
      return rows[0]!;
    };
    const bobs = await stored(dated);
    const alices = await stored(created);
    assert.ok(bobs.other + bobs.fail < bobs.all / 4, JSON.stringify(bobs));
    for (const [scope, f, most] of [
      [scopes[0]!, { webhook: dated, response_http_status: 200 }, bobs.other + bobs.fail],
      [scopes[2]!, { webhook: dated, response_http_status: 200 }, bobs.other + bobs.fail],
      [scopes[0]!, { webhook: dated, response_http_status: 204 }, bobs.other],
      [scopes[2]!, { webhook: dated, response_http_status: 201 }, 0],
      // alice's events of a type, of a webhook with events of another type too
      [
        scopes[1]!,
        { response_http_status: 200, event_type: 'package.shipped' },
        alices.other + alices.fail,
      ],
    ] as const)
      await assertRead(scope, f, await counted(scope, f), most);
  }

  // deletes in a block held whole, and an event of its dated back years
  await db.query('delete from hook_events where id between -20000 and -19000');
  await db.query(`update hook_events set created_date = '2020-06-01T00:00:00Z' where id = -15000`);
  await assertRanges('after deletes and an event dated back');
  assert.ok((await foldEventCounts(db)) > 0);
  const { rows } = await db.query<{ blocks: number; rows: number }>(
    `select count(distinct block)::int as blocks, count(*)::int as rows from hook_event_blocks`,
  );
  assert.equal(rows[0]!.rows, rows[0]!.blocks, 'one row per block once folded');
  await assertKeyBlocks('after a fold', true);
  await assertRanges('after a fold');
  await db.query('delete from webhooks where id = $1', [dated]);
  await assertRanges('after its webhook was deleted');
  await assertKeyBlocks('after its webhook was deleted', false);
});
