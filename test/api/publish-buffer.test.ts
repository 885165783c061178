import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Db } from '../../src/store/db.js';
import { createContext, type Context } from '../helpers/context.js';

/**
 * The publish buffer: while the database is behind, publishes accepted before hold their
 * payloads in memory until their write ends. Past PUBLISH_BUFFER_BYTES a publish is
 * refused at once with 503 and Retry-After, and nothing of it is written.
 */

/** The publish statement, held in the database while `holding` is true. */
const gate = { holding: true, waiting: [] as (() => void)[], events: 0 };
const holdingWrites = (db: Db): Db => ({
  ...db,
  query: async (sql, params, name) => {
    if (name === 'oms_enqueue' && gate.holding) {
      // its first parameter is the JSON array of the events it writes
      gate.events += (JSON.parse(String(params![0])) as unknown[]).length;
      await new Promise<void>((resolve) => gate.waiting.push(resolve));
    }
    return db.query(sql, params, name);
  },
});

const PAD = 'x'.repeat(1_000);

let ctx: Context;
before(async () => {
  // each event's payload is a little over 1,000 bytes: one fits, a second beside it not
  ctx = await createContext(
    { PUBLISH_BUFFER_BYTES: '1500', RATE_LIMIT_PER_SECOND: '0' },
    holdingWrites,
  );
});
after(() => ctx.close());

const publish = (hook: number, n: number) =>
  ctx.api({
    method: 'POST',
    url: '/api/v1/oms/oms_hook_events/publish-event/',
    payload: { hook, instance: { pk: n, model: 'package', data: { n, pad: PAD } } },
  });

async function until(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !condition(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(condition(), 'timed out');
}

test(
  'a publish past the buffer gets 503 with Retry-After, is not stored, and goes through when sent again',
  { timeout: 60_000 },
  async () => {
    const hook = (await ctx.createWebhook({ target_url: ctx.receiver.url('/buffer') }))
      .id as number;
    // One publish held in its write, whatever the number of writes in flight (one on
    // PostgreSQL, two on PGlite); more held ones are the group commit's unit tests.
    const first = publish(hook, 1);
    await until(() => gate.events === 1);

    const refused = await publish(hook, 2);
    assert.equal(refused.statusCode, 503);
    assert.equal(refused.headers['retry-after'], '1');
    assert.deepEqual(refused.json(), {
      detail: 'Too many published events are waiting to be written; try again in a second.',
    });

    gate.holding = false;
    for (const release of gate.waiting.splice(0)) release();
    assert.equal((await first).statusCode, 202);

    const stored = async () =>
      (
        await ctx.db.query<{ n: number }>(
          `select (p.request_payload::jsonb #>> '{payload,n}')::int as n
         from hook_events e join hook_event_payloads p on p.hook_event_id = e.id
         where e.webhook_id = $1 order by 1`,
          [hook],
        )
      ).rows.map((r) => r.n);
    assert.deepEqual(await stored(), [1]);

    // the buffer let go of the first as it was answered: the refused one is taken now
    assert.equal((await publish(hook, 2)).statusCode, 202);
    assert.deepEqual(await stored(), [1, 2]);

    assert.equal(await ctx.worker.runOnce(), 2);
    const arrived = ctx.receiver.requests
      .filter((r) => r.path === '/buffer')
      .map((r) => (JSON.parse(r.body) as { payload: { n: number } }).payload.n)
      .sort();
    assert.deepEqual(arrived, [1, 2]);
  },
);
