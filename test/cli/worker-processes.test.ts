import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
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
