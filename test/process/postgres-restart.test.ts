import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { onPostgres } from '../helpers/db.js';
import { PrivatePostgres, privatePostgresUnavailable } from './private-postgres.js';
import {
  adminToken,
  api,
  createSchema,
  kill,
  startServe,
  waitUntil,
  type Proc,
  type Schema,
} from './processes.js';
import { TallyReceiver } from './tally-receiver.js';
import { freePort } from '../helpers/ports.js';

const skip = (!onPostgres && 'needs PostgreSQL') || privatePostgresUnavailable() || false;
const EVENTS = 400;

let server: PrivatePostgres;
let schema: Schema;
let receiver: TallyReceiver;
before(async () => {
  if (skip) return;
  server = await PrivatePostgres.create(await freePort());
  schema = await createSchema(server.url);
  receiver = await TallyReceiver.start();
});
after(async () => {
  if (skip) return;
  await receiver.close();
  await schema.db.close().catch(() => {});
  await server.destroy();
});

test(
  'PostgreSQL restarts mid-run: the API answers 503 meanwhile, nothing is lost, deliveries resume',
  { skip, timeout: 120_000 },
  async () => {
    // A steady, slow stream, so the restart lands in the middle of it.
    receiver.answer = () => ({ delayMs: 20, status: 200 });
    const port = await freePort();
    const token = await adminToken(schema.db);
    let proc: Proc | undefined;
    try {
      proc = await startServe('all', {
        DATABASE_URL: schema.url,
        PORT: String(port),
        WORKER_CONCURRENCY: '2',
        WORKER_BATCH_SIZE: '10',
        HEARTBEAT_MS: '1000',
      });
      const hook = await api(port, token, 'POST', '/api/v1/oms/webhooks/', {
        target_url: receiver.url('/r'),
        event_type: 'package.created',
        retry_countdown_config: { choice: 'fixed', kwargs: { seconds: 1 } },
      });
      assert.equal(hook.status, 201);
      const id = (hook.body as { id: number }).id;
      const publish = (n: number) =>
        api(port, token, 'POST', '/api/v1/oms/oms_hook_events/publish-event/', {
          hook: id,
          instance: { pk: n, model: 'package', data: { number: `R${n}` } },
        });
      for (let n = 0; n < EVENTS; n += 10) {
        const answers = await Promise.all(Array.from({ length: 10 }, (_, i) => publish(n + i)));
        assert.deepEqual(new Set(answers.map((a) => a.status)), new Set([202]));
      }
      await waitUntil(() => receiver.distinct >= EVENTS / 4, 30_000, 'deliveries under way');
      assert.ok(receiver.distinct < EVENTS, 'the run is still going when the server stops');

      await server.stop();
      const down = await api(port, token, 'GET', '/api/v1/oms/webhooks/');
      assert.equal(down.status, 503);
      assert.equal(down.headers.get('retry-after'), '2');
      assert.equal(typeof (down.body as { detail: unknown }).detail, 'string');
      const refused = await publish(EVENTS);
      assert.equal(refused.status, 503, 'an event is not accepted while it cannot be stored');
      assert.equal(refused.headers.get('retry-after'), '2');
      const receivedWhileDown = receiver.distinct;
      await server.start();

      await waitUntil(
        async () => (await api(port, token, 'GET', '/api/v1/oms/webhooks/')).status === 200,
        30_000,
        'the API to answer again',
      );
      await waitUntil(
        () => receiver.distinct >= EVENTS,
        60_000,
        `every accepted event (${receiver.summary()})`,
      );
      assert.ok(receiver.distinct > receivedWhileDown, 'deliveries resumed after the restart');
      await waitUntil(
        async () =>
          (
            await schema.db.query<{ n: number }>(
              'select count(*)::int as n from hook_events where not delivered',
            )
          ).rows[0]!.n === 0,
        30_000,
        'every event recorded as delivered',
      );
      // The worker's LISTEN connection came back by itself (wake-ups work again).
      await waitUntil(
        async () =>
          (
            await schema.db.query<{ n: number }>(
              `select count(*)::int as n from pg_stat_activity where query like 'LISTEN %'`,
            )
          ).rows[0]!.n > 0,
        30_000,
        'the LISTEN connection to be re-established',
      );
      assert.equal(proc.child.exitCode, null, 'the process survived the outage');
      console.log(
        `postgres restart: ${EVENTS} accepted, ${receiver.distinct} received, ` +
          `${receiver.requests} requests, ${receiver.duplicates} duplicates`,
      );
      proc.child.kill('SIGTERM');
      assert.equal((await proc.exited).code, 0, proc.output().slice(-3000));
    } finally {
      if (proc) await kill(proc);
    }
  },
);
