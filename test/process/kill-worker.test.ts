import assert from 'node:assert/strict';
import { test } from 'node:test';
import { onPostgres } from '../helpers/db.js';
import {
  processFixture,
  adminToken,
  api,
  kill,
  startServe,
  waitUntil,
  type Proc,
} from './processes.js';
import { freePort } from '../helpers/ports.js';

const skip = !onPostgres && 'needs PostgreSQL';
const WEBHOOKS = 10;
const EMITS = 200; // x 10 webhooks = 2,000 events
const KILLS = 3;

const fx = processFixture(skip);

test(
  'kill -9 of the worker, again and again, during 2,000 deliveries: every accepted event arrives',
  { skip, timeout: 150_000 },
  async () => {
    fx.receiver.answer = () => ({ delayMs: 10, status: 200 });
    const port = await freePort();
    const env = { DATABASE_URL: fx.schema.url, PORT: String(port), LEASE_MS: '3000' };
    const token = await adminToken(fx.schema.db);
    const procs: Proc[] = [];
    let worker: Proc | undefined;
    try {
      procs.push(await startServe('api', env), await startServe('maintenance', env));
      for (let i = 0; i < WEBHOOKS; i++) {
        const res = await api(port, token, 'POST', '/api/v1/oms/webhooks/', {
          target_url: fx.receiver.url(`/w${i}`),
          event_type: 'package.created',
          retry_countdown_config: { choice: 'fixed', kwargs: { seconds: 1 } },
        });
        assert.equal(res.status, 201);
      }
      worker = await startServe('worker', env);

      const accepted: string[] = [];
      let next = 0;
      const publisher = async () => {
        while (next < EMITS) {
          const n = next++;
          const res = await api(port, token, 'POST', '/api/v1/oms/oms_hook_events/emit/', {
            event_type: 'package.created',
            instance: { pk: n, model: 'package', data: { number: `K${n}` } },
          });
          assert.equal(res.status, 202);
          accepted.push(...(res.body as { events: string[] }).events);
        }
      };
      const publishing = Promise.all(Array.from({ length: 8 }, publisher));

      // Kill at evenly spread points of the run, each time mid-batch, and start a new one.
      for (let k = 1; k <= KILLS; k++) {
        const mark = Math.floor((k * WEBHOOKS * EMITS) / (KILLS + 2));
        await waitUntil(() => fx.receiver.distinct >= mark, 60_000, `${mark} events received`);
        await kill(worker);
        worker = await startServe('worker', env);
      }
      await publishing;
      assert.equal(accepted.length, WEBHOOKS * EMITS);
      await waitUntil(
        () => fx.receiver.missing(accepted).length === 0,
        60_000,
        `every accepted event (${fx.receiver.summary()})`,
      );
      await waitUntil(
        async () => (await fx.count('select count(*)::int as n from hook_event_queue')) === 0,
        20_000,
        'the queue to empty',
      );
      assert.equal(
        await fx.count('select count(*)::int as n from hook_events where not delivered'),
        0,
      );
      console.log(
        `kill -9 x${KILLS}: ${accepted.length} accepted, ${fx.receiver.distinct} received, ` +
          `${fx.receiver.requests} requests, ${fx.receiver.duplicates} duplicates`,
      );
    } finally {
      if (worker) await kill(worker, 'SIGTERM');
      for (const p of procs) await kill(p, 'SIGTERM');
    }
  },
);
