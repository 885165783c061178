import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { HandoffMessage, HandoffReport } from '../../src/queue/handoff.js';
import {
  serveParentHandoffs,
  WORKER_NODE_FLAGS,
  workerArgs,
  workerNodeArgs,
  workerProcessCount,
} from '../../src/cli/worker-processes.js';
import { loadConfig } from '../../src/config/config.js';

test('a worker process gets the parent command line with --role worker in place of its role', () => {
  assert.deepEqual(workerArgs(['serve', '--port', '9000', '--role', 'all', '--lease-ms=70000']), [
    'serve',
    '--port',
    '9000',
    '--lease-ms=70000',
    '--role',
    'worker',
  ]);
  assert.deepEqual(workerArgs(['serve', '--role=all']), ['serve', '--role', 'worker']);
  assert.deepEqual(workerArgs(['serve']), ['serve', '--role', 'worker']);
});

test("a worker process starts with the worker's V8 flags, which the parent's own can override", () => {
  assert.deepEqual(WORKER_NODE_FLAGS, ['--heap-growing-percent=50']);
  assert.deepEqual(workerNodeArgs([]), ['--heap-growing-percent=50']);
  assert.deepEqual(workerNodeArgs(['--heap-growing-percent=20', '--enable-source-maps']), [
    '--heap-growing-percent=50',
    '--heap-growing-percent=20',
    '--enable-source-maps',
  ]);
});

test('worker processes: never on PGlite or for a role other than all; a number is taken as is', () => {
  const pg = 'postgres://localhost/x';
  assert.equal(workerProcessCount(loadConfig({ WORKER_PROCESSES: '3' })), 0, 'PGlite');
  assert.equal(workerProcessCount(loadConfig({ WORKER_PROCESSES: 'auto' })), 0, 'PGlite');
  assert.equal(
    workerProcessCount(loadConfig({ DATABASE_URL: pg, WORKER_PROCESSES: '2', ROLE: 'api' })),
    0,
  );
  assert.equal(workerProcessCount(loadConfig({ DATABASE_URL: pg, WORKER_PROCESSES: '2' })), 2);
  assert.equal(workerProcessCount(loadConfig({ DATABASE_URL: pg, WORKER_PROCESSES: '0' })), 0);
  assert.throws(() => loadConfig({ WORKER_PROCESSES: 'many' }), /WORKER_PROCESSES/);
});

/**
 * The channel of a parent killed outright, as Node's own behaves until the child reads
 * its close: still `connected`, every send failing with EPIPE, reported to the callback
 * when there is one and otherwise as an 'error' event (which, unheard, ends the process).
 */
class DeadParent extends EventEmitter {
  readonly connected = true;
  readonly sent: HandoffMessage[] = [];
  send(message: HandoffMessage, callback?: (error: Error | null) => void): boolean {
    this.sent.push(message);
    const epipe = Object.assign(new Error('write EPIPE'), { code: 'EPIPE' });
    if (callback) process.nextTick(callback, epipe);
    else process.nextTick(() => this.emit('error', epipe));
    return false;
  }
}

test('a worker process whose parent died outright lives on to shut down: a failed report is not an error', async () => {
  const parent = new DeadParent();
  let room = 0;
  const worker = {
    // a new report every time, so every tick sends
    handoffReport: (): HandoffReport => ({ workerId: 'w', room: room++, full: [], accepted: 0 }),
    accept: () => {},
  };
  const stop = serveParentHandoffs(worker, parent);
  try {
    await sleep(100);
  } finally {
    stop();
  }
  await sleep(10);
  assert.ok(parent.sent.length >= 2, `reports sent: ${parent.sent.length}`);
  assert.equal(parent.sent[0]!.type, 'handoff-report');
  assert.equal(parent.listenerCount('message'), 0, 'stopping takes its listener off');
});
