import assert from 'node:assert/strict';
import { test } from 'node:test';
import { onPostgres } from '../helpers/db.js';
import {
  kill,
  processFixture,
  seedEvents,
  seedWebhook,
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
    } finally {
      await kill(all, 'SIGKILL');
    }
    // kill -9 leaves the child no signal: it notices its parent's channel close
    await waitUntil(() => !alive(pid), 30_000, 'the orphaned worker process to exit');
    assert.equal(
      await fx.count('select count(*)::int as n from hook_event_queue where locked_by is not null'),
      0,
      'it gave back its leases',
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
