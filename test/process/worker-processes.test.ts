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

/** The pids the parent logged for the worker processes it started, oldest first. */
const childPids = (output: string): number[] =>
  [...output.matchAll(/"child":(\d+),"msg":"worker process started"/g)].map((m) => Number(m[1]));

/** The pid the parent logged for its (first) worker process. */
const childPid = (output: string): number => {
  const [pid] = childPids(output);
  assert.ok(pid, `no worker process in:\n${output.slice(-3000)}`);
  return pid;
};

/** The hand-offs a worker process logged (at debug level): its pid and the events. */
const handoffs = (output: string): { pid: number; events: number }[] =>
  [...output.matchAll(/"pid":(\d+),[^\n]*"events":(\d+),"msg":"took events from a publish"/g)].map(
    (m) => ({ pid: Number(m[1]), events: Number(m[2]) }),
  );

/**
 * `serve --role all` with one worker process, logging its hand-offs, on a free port,
 * with a webhook at the receiver's `path` and an admin token.
 */
async function startAllWithWorker(path: string, env: Record<string, string> = {}) {
  const hook = await seedWebhook(fx.schema.db, fx.receiver.url(path));
  const token = await adminToken(fx.schema.db);
  const port = await freePort();
  const all = await startServe('all', {
    DATABASE_URL: fx.schema.url,
    WORKER_PROCESSES: '1',
    PORT: String(port),
    LOG_LEVEL: 'debug',
    ...env,
  });
  return { hook, token, port, all };
}

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
    const { hook, token, port, all } = await startAllWithWorker('/handed');
    try {
      await all.waitFor(/"role":"worker".*oms-hooks is running/);
      const publish = async (n: number) => {
        const res = await api(port, token, 'POST', '/api/v1/oms/oms_hook_events/publish-event/', {
          hook,
          instance: { pk: n, model: 'package', data: { n } },
        });
        assert.equal(res.status, 202);
      };
      const taken = () => handoffs(all.output()).reduce((sum, h) => sum + h.events, 0);
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

test(
  'kill -9 of the worker process of serve --role all while it is handed events: the parent lives on, starts another, and every accepted event arrives',
  { skip, timeout: 120_000 },
  async () => {
    const KILLS = 2;
    const answer = fx.receiver.answer;
    fx.receiver.answer = () => ({ delayMs: 5, status: 200 });
    const { token, port, all } = await startAllWithWorker('/respawn', {
      RATE_LIMIT_PER_SECOND: '0',
    });
    const started = () => childPids(all.output());
    /** How many times the parent's publishes handed events to this worker process. */
    const handedTo = (pid: number) => handoffs(all.output()).filter((h) => h.pid === pid).length;
    try {
      await all.waitFor(/"role":"worker".*oms-hooks is running/);
      // every active webhook of the schema matches, those of the tests before too
      const accepted: string[] = [];
      let publishing = true;
      let n = 0;
      const publisher = async () => {
        while (publishing) {
          const res = await api(port, token, 'POST', '/api/v1/oms/oms_hook_events/emit/', {
            event_type: 'package.created',
            instance: { pk: n, model: 'package', data: { n: n++ } },
          });
          assert.equal(res.status, 202, JSON.stringify(res.body));
          accepted.push(...(res.body as { events: string[] }).events);
        }
      };
      const publishers = Promise.all(Array.from({ length: 8 }, publisher));
      // a refused publish ends the run; it is thrown below, where publishers are awaited
      publishers.catch(() => (publishing = false));
      try {
        for (let k = 0; k <= KILLS; k++) {
          const pid = started()[k]!;
          await waitUntil(() => handedTo(pid) >= 5, 30_000, `events handed to process ${k + 1}`);
          if (k === KILLS) break;
          process.kill(pid, 'SIGKILL');
          await waitUntil(() => started().length > k + 1, 30_000, `process ${k + 2} to start`);
        }
      } finally {
        publishing = false;
        await publishers;
      }
      await waitUntil(
        () => fx.receiver.missing(accepted).length === 0,
        60_000,
        `every one of ${accepted.length} accepted events (${fx.receiver.summary()})`,
      );
      await waitUntil(
        async () =>
          (await fx.count('select count(*)::int as n from hook_events where not delivered')) ===
            0 && (await fx.count('select count(*)::int as n from hook_event_queue')) === 0,
        30_000,
        'every event recorded as delivered, the queue empty',
      );
      assert.equal(all.child.exitCode, null, `the parent ended:\n${all.output().slice(-3000)}`);
      assert.equal(all.child.signalCode, null);
      assert.equal(
        [...all.output().matchAll(/"msg":"worker process exited; restarting it"/g)].length,
        KILLS,
      );
      assert.equal(new Set(started()).size, KILLS + 1, 'each kill ended another process');
      assert.deepEqual(
        started().filter((pid) => alive(pid)),
        [started().at(-1)],
        'one worker process runs, the last',
      );
    } finally {
      fx.receiver.answer = answer;
      await kill(all, 'SIGTERM');
    }
  },
);
