import assert from 'node:assert/strict';
import { test } from 'node:test';
import { onPostgres } from '../helpers/db.js';
import {
  processFixture,
  kill,
  seedEvents,
  seedWebhook,
  startServe,
  waitUntil,
  type Proc,
} from './processes.js';

const skip = !onPostgres && 'needs PostgreSQL';

const fx = processFixture(skip);

test(
  'four worker processes share one backlog: no event attempted twice at once, none left behind',
  { skip },
  async () => {
    const { db } = fx.schema;
    // A little latency per answer keeps many attempts in flight across the four workers.
    fx.receiver.answer = () => ({ delayMs: 5, status: 200 });
    const hooks = await Promise.all(
      [1, 2, 3, 4].map((n) => seedWebhook(db, fx.receiver.url(`/h${n}`))),
    );
    const uuids = (await Promise.all(hooks.map((h) => seedEvents(db, h, 500)))).flat();

    const workers: Proc[] = [];
    try {
      // Small batches so the four really interleave on the same rows' neighbourhood.
      const env = {
        DATABASE_URL: fx.schema.url,
        WORKER_BATCH_SIZE: '20',
        WORKER_CONCURRENCY: '10',
      };
      workers.push(...(await Promise.all([1, 2, 3, 4].map(() => startServe('worker', env)))));
      await waitUntil(() => fx.receiver.distinct === uuids.length, 90_000, 'all 2,000 events');
      await waitUntil(
        async () =>
          (await db.query<{ n: number }>('select count(*)::int as n from hook_event_queue'))
            .rows[0]!.n === 0,
        10_000,
        'the queue to empty',
      );
    } finally {
      for (const w of workers) await kill(w, 'SIGTERM');
    }

    assert.deepEqual(fx.receiver.overlaps, [], 'an event was attempted by two workers at once');
    assert.deepEqual(fx.receiver.missing(uuids), []);
    const { rows } = await db.query<{ delivered: number; total: number }>(
      `select count(*) filter (where delivered)::int as delivered, count(*)::int as total from hook_events`,
    );
    assert.deepEqual(rows[0], { delivered: uuids.length, total: uuids.length });
    const { rows: byWorker } = await db.query<{ n: number }>(
      'select count(*)::int as n from workers',
    );
    assert.equal(byWorker[0]!.n, 0, 'stopped workers sign off');
    console.log(
      `four workers: ${uuids.length} events, ${fx.receiver.requests} requests, ${fx.receiver.duplicates} duplicates, ${fx.receiver.overlaps.length} overlaps`,
    );
  },
);
