import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import Fastify, { type FastifyBaseLogger } from 'fastify';
import { createLogger } from '../../src/config/logger.js';
import { logLines } from '../helpers/log-lines.js';
import { lazyChildLogger } from '../../src/api/request-logger.js';

/**
 * Request loggers made only when a line is written: requests that log nothing make no
 * child of the app's logger, and the lines that are written are the ones the eager child
 * Fastify makes by default would write, with the request's id and the redaction.
 */

function appWith(level: string, factory?: typeof lazyChildLogger) {
  const { lines, sink } = logLines();
  const logger = createLogger(level, sink).child({ component: 'api' });
  let children = 0;
  // counts the request loggers made (bound to a request id), wherever Fastify makes them
  const child = logger.child;
  logger.child = function (this: typeof logger, ...args: Parameters<typeof child>) {
    if ('reqId' in args[0]) children++;
    return child.apply(this, args);
  } as typeof logger.child;
  const app = Fastify({
    loggerInstance: logger as FastifyBaseLogger,
    ...(factory ? { childLoggerFactory: factory } : {}),
  });
  // as the service's error handler does (src/api/errors.ts): the error, not the request
  app.setErrorHandler(async (error, request, reply) => {
    request.log.error({ err: error }, 'unhandled error');
    return reply.code(500).send({ detail: 'A server error occurred.' });
  });
  app.get('/quiet', async () => ({ ok: true }));
  app.get('/fails', async (request) => {
    request.log.error({ authorization: 'Token sk_live_do_not_log' }, 'it broke');
    throw new Error('boom');
  });
  app.get('/chatty', async (request) => {
    request.log.child({ step: 'inner' }).warn('from a grandchild');
    request.log.debug('not at this level');
    return { level: request.log.level };
  });
  return { app, ready: app.ready(), lines, children: () => children };
}

describe('request loggers', () => {
  test('a request that writes no line makes no child logger', async () => {
    const { app, ready, lines, children } = appWith('warn', lazyChildLogger);
    await ready;
    for (let i = 0; i < 5; i++) {
      const res = await app.inject({ method: 'GET', url: '/quiet' });
      assert.equal(res.statusCode, 200);
    }
    assert.equal(children(), 0);
    assert.deepEqual(lines, []);
    await app.close();
  });

  test("the lines written are the eager child's: same messages, request id and redaction", async () => {
    const written = async (factory?: typeof lazyChildLogger) => {
      const { app, ready, lines, children } = appWith('warn', factory);
      await ready;
      for (const url of ['/quiet', '/fails', '/chatty']) await app.inject({ method: 'GET', url });
      await app.close();
      const shape = lines.map(({ time: _time, pid: _pid, hostname: _host, err, ...rest }) => ({
        ...rest,
        err: (err as { message?: string } | undefined)?.message,
      }));
      return { shape, children: children() };
    };
    const eager = await written();
    const lazy = await written(lazyChildLogger);
    assert.deepEqual(lazy.shape, eager.shape);
    // the route's own line, the error handler's, the grandchild's warning
    assert.equal(lazy.shape.length, 3, JSON.stringify(lazy.shape));
    assert.deepEqual(lazy.shape[0], {
      level: 50,
      component: 'api',
      reqId: 'req-2',
      authorization: '[redacted]',
      msg: 'it broke',
      err: undefined,
    });
    assert.deepEqual(lazy.shape[1], {
      level: 50,
      component: 'api',
      reqId: 'req-2',
      msg: 'unhandled error',
      err: 'boom',
    });
    assert.deepEqual(lazy.shape[2], {
      level: 40,
      component: 'api',
      reqId: 'req-3',
      step: 'inner',
      msg: 'from a grandchild',
      err: undefined,
    });
    // the eager factory made a child for each of the three requests, the lazy one for the
    // two that wrote a line
    assert.equal(eager.children, 3);
    assert.equal(lazy.children, 2);
  });

  test("at info, Fastify's own request lines carry the request id as before", async () => {
    const { app, ready, lines } = appWith('info', lazyChildLogger);
    await ready;
    const res = await app.inject({ method: 'GET', url: '/chatty' });
    assert.deepEqual(res.json(), { level: 'info' });
    await app.close();
    const messages = lines.filter((l) => l.reqId === 'req-1').map((l) => l.msg);
    assert.deepEqual(messages, ['incoming request', 'from a grandchild', 'request completed']);
  });
});
