import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { SLOT_WINDOW_START } from '../../src/delivery/slot-windows.js';
import type { Queryable } from '../../src/store/db.js';
import { onPostgres } from '../helpers/db.js';
import {
  createSchema,
  kill,
  seedEvents,
  seedWebhook,
  startServe,
  waitUntil,
  type Proc,
  type Schema,
} from './processes.js';
import { TallyReceiver } from './tally-receiver.js';

/**
 * One maintenance process on a schema, doing its three jobs: releasing a killed worker's
 * leases, purging old events, deactivating a webhook that has only failed.
 */
const skip = !onPostgres && 'needs PostgreSQL';

let schema: Schema;
let receiver: TallyReceiver;
let maintenance: Proc | undefined;
before(async () => {
  if (skip) return;
  schema = await createSchema(process.env.DATABASE_URL!);
  receiver = await TallyReceiver.start();
  receiver.answer = (path) =>
    path === '/hang' ? { delayMs: 120_000, status: 200 } : { delayMs: 0, status: 200 };
  maintenance = await startServe('maintenance', { DATABASE_URL: schema.url, HEARTBEAT_MS: '300' });
});
after(async () => {
  if (skip) return;
  if (maintenance) await kill(maintenance, 'SIGTERM');
  await receiver.close();
  await schema.drop();
});

const one = async <T>(sql: string, params: unknown[] = []) =>
  (await schema.db.query<T>(sql, params)).rows[0]!;

test(
  "a killed worker's leases are released within seconds, long before they expire",
  { skip },
  async () => {
    const hook = await seedWebhook(schema.db, receiver.url('/hang'));
    await seedEvents(schema.db, hook, 10);
    const worker = await startServe('worker', {
      DATABASE_URL: schema.url,
      HEARTBEAT_MS: '300',
      REQUEST_TIMEOUT_MS: '60000',
      LEASE_MS: '600000',
    });
    try {
      // all ten are claimed and leased; a new webhook's first window sends four of them
      await waitUntil(
        () => receiver.requests >= SLOT_WINDOW_START,
        20_000,
        'the first window of attempts in flight',
      );
      const held = await one<{ n: number; expires_in_s: number }>(
        `select count(*)::int as n,
                extract(epoch from min(locked_until) - now())::int as expires_in_s
         from hook_event_queue where locked_by is not null`,
      );
      assert.equal(held.n, 10);
      assert.ok(held.expires_in_s > 500, 'the leases have minutes left');
    } finally {
      await kill(worker); // SIGKILL: no sign-off, the leases stay behind
    }

    // The upper bound is a tenth of the lease: only the rescue can clear them in time.
    await waitUntil(
      async () =>
        (
          await one<{ n: number }>(
            'select count(*)::int as n from hook_event_queue where locked_by is not null',
          )
        ).n === 0,
      60_000,
      'the leases to be released',
    );
    assert.equal((await one<{ n: number }>('select count(*)::int as n from workers')).n, 0);
    assert.equal(
      (await one<{ n: number }>('select count(*)::int as n from hook_event_queue')).n,
      10,
      'the events stay queued, ready to be claimed again',
    );
  },
);

test(
  'retention purges events older than RETENTION_DAYS, in batches, and keeps the rest',
  { skip },
  async () => {
    const hook = await seedWebhook(schema.db, receiver.url('/old'), { is_active: false });
    await seedEvents(schema.db, hook, 2_500);
    await schema.db.query(
      `update hook_events set created_date = now() - interval '90 days'
     where id in (select id from hook_events where webhook_id = $1 order by id limit 2300)`,
      [hook],
    );
    await waitUntil(
      async () =>
        (
          await one<{ n: number }>(
            `select count(*)::int as n from hook_events
         where webhook_id = $1 and created_date < now() - interval '84 days'`,
            [hook],
          )
        ).n === 0,
      60_000,
      'old events to be purged',
    );
    const left = await one<{ events: number; queued: number }>(
      `select (select count(*)::int from hook_events where webhook_id = $1) as events,
            (select count(*)::int from hook_event_queue where webhook_id = $1) as queued`,
      [hook],
    );
    assert.deepEqual(left, { events: 200, queued: 200 });
  },
);

test(
  'a webhook whose attempts have all failed for AUTO_DISABLE_DAYS is deactivated and its callback told',
  { skip },
  async () => {
    const { db } = schema;
    const failing = await seedWebhook(db, receiver.url('/down'), {
      callback: receiver.url('/callback'),
    });
    const recovered = await seedWebhook(db, receiver.url('/flaky'));
    const recent = await seedWebhook(db, receiver.url('/new-trouble'));
    // Attempt times newest first, as the worker records them.
    const event = (tx: Queryable, webhook: number, delivered: boolean, ...agesInHours: number[]) =>
      tx.query(
        `insert into hook_events (webhook_id, uuid, event_type, delivered, retry_count,
                                  request_datetimes, created_date)
         select $1, gen_random_uuid(), 'package.created', $2, cardinality(t), t, t[cardinality(t)]
         from (select array(select now() - u.h * interval '1 hour'
                            from unnest($3::int[]) with ordinality as u(h, o) order by u.o) as t) x`,
        [webhook, delivered, agesInHours],
      );
    // One transaction: no maintenance pass may see half of this history.
    await db.transaction(async (tx) => {
      await event(tx, failing, false, 100, 144); // failing for six days
      await event(tx, failing, false, 1);
      await event(tx, recovered, false, 130, 144); // failed six days ago...
      await event(tx, recovered, true, 24); // ...but delivered yesterday
      await event(tx, recovered, false, 2);
      await event(tx, recent, false, 40, 48); // failing for two days only
    });

    await waitUntil(
      async () =>
        !(
          await one<{ is_active: boolean }>('select is_active from webhooks where id = $1', [
            failing,
          ])
        ).is_active,
      60_000,
      'the failing webhook to be deactivated',
    );
    await waitUntil(
      () => receiver.arrivals.some((a) => a.path === '/callback'),
      20_000,
      'the callback',
    );
    const told = JSON.parse(receiver.arrivals.find((a) => a.path === '/callback')!.body) as {
      webhook: number;
      is_active: boolean;
      reason: string;
    };
    assert.equal(told.webhook, failing);
    assert.equal(told.is_active, false);
    assert.match(told.reason, /has failed/);
    // The same statement weighed the others: they stay active.
    const { rows } = await db.query<{ id: number; is_active: boolean }>(
      'select id, is_active from webhooks where id = any($1::int[]) order by id',
      [[recovered, recent]],
    );
    assert.deepEqual(rows, [
      { id: recovered, is_active: true },
      { id: recent, is_active: true },
    ]);
  },
);
