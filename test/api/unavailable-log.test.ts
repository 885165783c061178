import assert from 'node:assert/strict';
import { test } from 'node:test';
import Fastify, { type FastifyBaseLogger } from 'fastify';
import {
  databaseUnavailable,
  installErrorHandling,
  publishBufferFull,
} from '../../src/api/errors.js';
import { createLogger } from '../../src/config/logger.js';
import { logLines } from '../helpers/log-lines.js';

/**
 * A 503 comes to every request at once (the database away, the publish buffer full): the
 * error handler logs the first of each code in a second whole, and the rest as a count.
 */
test('a flood of 503s is logged once per code, then counted, not one line each', async () => {
  const { lines, sink } = logLines();
  const app = Fastify({ loggerInstance: createLogger('info', sink) as FastifyBaseLogger });
  installErrorHandling(app);
  app.get('/full', async () => {
    throw publishBufferFull(new Error('held 2500 of 2500'));
  });
  app.get('/down', async () => {
    throw databaseUnavailable(
      Object.assign(new Error('terminating connection'), { code: '57P01' }),
    );
  });
  app.get('/bug', async () => {
    throw new Error('a bug');
  });
  try {
    const answers = await Promise.all([
      ...Array.from({ length: 30 }, () => app.inject({ url: '/full' })),
      ...Array.from({ length: 20 }, () => app.inject({ url: '/down' })),
      ...Array.from({ length: 3 }, () => app.inject({ url: '/bug' })),
    ]);
    assert.deepEqual(
      answers.map((a) => `${a.statusCode} ${a.headers['retry-after'] ?? '-'}`),
      [
        ...Array<string>(30).fill('503 1'),
        ...Array<string>(20).fill('503 2'),
        ...Array<string>(3).fill('500 -'),
      ],
    );
    const errors = () => lines.filter((l) => l.level === 50);
    const first = errors().filter((l) => l.err !== undefined);
    // each code's first, with its cause; every 500 on its own line
    assert.deepEqual(first.map((l) => (l.err as { message: string }).message).sort(), [
      'a bug',
      'a bug',
      'a bug',
      'held 2500 of 2500',
      'terminating connection',
    ]);
    // the counts come when the second ends
    await new Promise((resolve) => setTimeout(resolve, 1_200));
    const counted = errors().filter((l) => l.more !== undefined);
    assert.deepEqual(counted.map((l) => [l.code, l.more]).sort(), [
      ['database_unavailable', 19],
      ['publish_buffer_full', 29],
    ]);
  } finally {
    await app.close();
  }
});
