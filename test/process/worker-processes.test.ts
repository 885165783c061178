import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { onPostgres } from '../helpers/db.js';
import { freePort } from '../helpers/ports.js';
import {
  adminToken,
  api,
  kill,
  processFixture,
  seedEvents,
  seedWebhook,
  sleep,
  startServe,
  waitUntil,
} from './processes.js';

const skip = !onPostgres && 'needs PostgreSQL';

const fx = processFixture(skip);

/** The pid the parent logged for its worker process. */
const childPid = (output: string): number => {
  const m = /"child":(\d+),"msg":"worker process started"/.exec(output);
  assert.ok(m, `no worker process in:\n${output.slice(-3000)}`);
  return Number(m[1]);
};

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

test(
  'serve --role all delivers from a worker process of its own, which goes when the parent is killed',
  { skip },
  async () => {
    const hook = await seedWebhook(fx.schema.db, fx.receiver.url('/split'));
    await seedEvents(fx.schema.db, hook, 300);
    const all = await startServe('all', { DATABASE_URL: fx.schema.url, WORKER_PROCESSES: '1' });
    let pid = 0;
    try {
      await waitUntil(() => fx.receiver.distinct >= 300, 60_000, 'all 300 delivered');
      pid = childPid(all.output());
      assert.notEqual(pid, all.child.pid);
      assert.ok(alive(pid), 'the worker process is running');
      assert.match(all.output(), /"role":"worker"/, 'it runs the worker role');
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      assert.ok(cmdline.includes('--heap-growing-percent=50'), cmdline.join(' '));
    } finally {
      await kill(all, 'SIGKILL');
    }
    // kill -9 leaves the child no signal: it notices its parent's channel close
    await waitUntil(() => !alive(pid), 30_000, 'the orphaned worker process to exit');
    // the child writes to the pipes it inherited, which are still ours to read
    assert.equal(
      await fx.count('select count(*)::int as n from hook_event_queue where locked_by is not null'),
      0,
      `it gave back its leases; the processes printed:\n${all.output().slice(-3000)}`,
    );
    assert.equal(await fx.count('select count(*)::int as n from workers'), 0, 'and signed off');
  },
);

test('SIGTERM to serve --role all stops its worker process too, exit 0', { skip }, async () => {
  const all = await startServe('all', { DATABASE_URL: fx.schema.url, WORKER_PROCESSES: '1' });
  await all.waitFor(/"role":"worker".*oms-hooks is running/);
  const pid = childPid(all.output());
  all.child.kill('SIGTERM');
  const { code } = await all.exited;
  assert.equal(code, 0, all.output().slice(-3000));
  assert.equal(alive(pid), false, 'the worker process is gone when the parent has exited');
});

test(
  'events published to serve --role all go to its worker process over the channel, not through a claim',
  { skip },
  async () => {
    const hook = await seedWebhook(fx.schema.db, fx.receiver.url('/handed'));
    const token = await adminToken(fx.schema.db);
    const port = await freePort();
    const all = await startServe('all', {
      DATABASE_URL: fx.schema.url,
      WORKER_PROCESSES: '1',
      PORT: String(port),
      LOG_LEVEL: 'debug',
    });
    try {
      await all.waitFor(/"role":"worker".*oms-hooks is running/);
      const publish = async (n: number) => {
        const res = await api(port, token, 'POST', '/api/v1/oms/oms_hook_events/publish-event/', {
          hook,
          instance: { pk: n, model: 'package', data: { n } },
        });
        assert.equal(res.status, 202);
      };
      const taken = () =>
        [...all.output().matchAll(/"events":(\d+),"msg":"took events from a publish"/g)].reduce(
          (sum, m) => sum + Number(m[1]),
          0,
        );
      // until the worker's first claim has found nothing due and it has told the parent
      // so, events wait for a claim: publish one at a time until one is handed over
      let published = 0;
      await waitUntil(
        async () => {
          await publish(published++);
          await sleep(100);
          return taken() > 0;
        },
        30_000,
        'a first event handed over',
      );
      const before = taken();
      for (let n = 0; n < 50; n++) await publish(published++);
      const delivered = () =>
        fx.count(
          `select count(*)::int as n from hook_events where webhook_id = ${hook} and delivered`,
        );
      await waitUntil(
        async () => (await delivered()) === published,
        30_000,
        `all ${published} delivered`,
      );
      // the log lines may trail the deliveries a little
      await waitUntil(() => taken() - before >= 50, 5_000, 'the log of all 50').catch(() => {});
      assert.equal(taken() - before, 50, 'the worker process took every event from the parent');
    } finally {
      await kill(all, 'SIGTERM');
    }
  },
);
