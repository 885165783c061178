import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/api/app.js';
import { createLogger } from '../../src/config/logger.js';
import { Sender } from '../../src/delivery/sender.js';
import { Worker } from '../../src/delivery/worker.js';
import { createContext, type Context } from '../helpers/context.js';
import { Receiver } from '../helpers/receiver.js';

/**
 * A whole scenario with every log line captured at trace level (success, failures,
 * token auth with a refetch, rotation, token creation, bad tokens, a 5xx error path),
 * then a search of the captured text for every credential that passed through.
 */
let ctx: Context;
let app: FastifyInstance;
let worker: Worker;
let sender: Sender;
let authServer: Receiver;
const captured: string[] = [];
const secrets = new Set<string>();

before(async () => {
  ctx = await createContext();
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      captured.push(chunk.toString('utf8'));
      done();
    },
  });
  const logger = createLogger('trace', sink);
  sender = new Sender({ responseCapBytes: ctx.config.responseCapBytes, allowPrivateTargets: true });
  app = buildApp(
    { db: ctx.db, clock: ctx.clock, config: ctx.config, sender },
    logger.child({ component: 'api' }),
  );
  await app.ready();
  worker = new Worker({
    db: ctx.db,
    clock: ctx.clock,
    sender,
    logger: logger.child({ component: 'worker' }),
    batchSize: ctx.config.workerBatchSize,
    concurrency: ctx.config.workerConcurrency,
    leaseMs: ctx.config.leaseMs,
    pollIntervalMs: ctx.config.pollIntervalMs,
    requestTimeoutMs: ctx.config.requestTimeoutMs,
    workerId: 'leaks-worker',
  });
  authServer = await Receiver.start();
  let n = 0;
  authServer.respond(() => {
    const token = `issued-Token-${++n}-zq81`;
    secrets.add(token);
    return {
      status: 200,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ token }),
    };
  });
  for (const key of Object.values(ctx.tokens)) secrets.add(key);
});
after(async () => {
  await app.close();
  await sender.close();
  await authServer.close();
  await ctx.close();
});

const call = (key: string, method: 'GET' | 'POST' | 'PATCH', url: string, payload?: unknown) =>
  app.inject({
    method,
    url,
    headers: { authorization: `Token ${key}` },
    ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }),
  });

test('a full scenario logs no token, secret, credential or signature', async () => {
  const admin = ctx.tokens.admin;
  // tokens made through the API, one of them used, one revoked
  const made = await call(admin, 'POST', '/api/v1/oms/tokens/', {
    username: 'carol',
    scope: 'write',
  });
  assert.equal(made.statusCode, 201);
  const carol = made.json().key as string;
  secrets.add(carol);
  // bad keys, in both schemes
  for (const bogus of ['0123456789abcdef0123456789abcdef01234567', 'Bogus-Key-Value-77']) {
    secrets.add(bogus);
    const res = await app.inject({
      method: 'GET',
      url: '/api/v1/oms/webhooks/',
      headers: { authorization: `Bearer ${bogus}` },
    });
    assert.equal(res.statusCode, 401);
  }

  // webhooks with basic and token auth, owned by carol
  secrets.add('Basic-Pass-Word-31');
  secrets.add('Token-Auth-Pass-62');
  const basic = await call(carol, 'POST', '/api/v1/oms/webhooks/', {
    target_url: ctx.receiver.url('/basic'),
    event_type: 'package.created',
    config: { auth: { type: 'basic', username: 'carol', password: 'Basic-Pass-Word-31' } },
  });
  const tokened = await call(carol, 'POST', '/api/v1/oms/webhooks/', {
    target_url: ctx.receiver.url('/token'),
    event_type: 'package.created',
    secret_key: 'plain-Secret-Key-93',
    config: {
      auth: {
        type: 'token',
        url: authServer.url('/auth'),
        username: 'carol',
        password: 'Token-Auth-Pass-62',
      },
      max_retries: 3,
    },
  });
  const refused = await call(carol, 'POST', '/api/v1/oms/webhooks/', {
    target_url: 'http://127.0.0.1:9/nothing-listens',
    event_type: 'package.created',
    config: { max_retries: 1 },
  });
  for (const res of [basic, tokened, refused]) {
    assert.equal(res.statusCode, 201, res.body);
    secrets.add(res.json().secret_key as string);
  }
  const rotated = await call(
    admin,
    'POST',
    `/api/v1/oms/webhooks/${basic.json().id as number}/rotate-secret/`,
    {},
  );
  assert.equal(rotated.statusCode, 200);
  secrets.add(rotated.json().secret_key as string);

  // a content type whose source needs a credential, and whose source is down: a 502 path
  secrets.add('Source-Header-Secret-44');
  const ct = await call(admin, 'POST', '/api/v1/oms/content_types/', {
    model: 'leaky',
    source_url: 'http://127.0.0.1:9/objects/{pk}',
    source_headers: { authorization: 'Token Source-Header-Secret-44' },
  });
  assert.equal(ct.statusCode, 201, ct.body);
  const down = await call(admin, 'POST', '/api/v1/oms/oms_hook_events/publish-event/', {
    hook: basic.json().id,
    instance: { pk: 1, model: 'leaky' },
  });
  assert.equal(down.statusCode, 502);

  // deliveries: successes, a 401 that makes the sender fetch a new token, a refused connection
  let first = true;
  ctx.receiver.respond((r) => {
    if (r.path === '/token' && first) {
      first = false;
      return { status: 401, body: 'token expired' };
    }
    return { status: 200, body: 'ok' };
  });
  for (const hook of [basic, tokened, refused]) {
    const res = await call(admin, 'POST', '/api/v1/oms/oms_hook_events/publish-event/', {
      hook: hook.json().id,
      instance: { pk: 7, model: 'package', data: { n: 1 } },
    });
    assert.equal(res.statusCode, 202);
  }
  const start = ctx.receiver.requests.length;
  assert.equal(await worker.runOnce(), 3);
  // a resend through the API, and reads of everything
  const events = await call(carol, 'GET', '/api/v1/oms/oms_hook_events/');
  assert.equal(events.statusCode, 200);
  const uuid = (events.json().results as { uuid: string }[])[0]!.uuid;
  assert.equal(
    (
      await call(carol, 'POST', '/api/v1/oms/oms_hook_events/resend-event/', {
        event: uuid,
        force: true,
      })
    ).statusCode,
    200,
  );
  await call(carol, 'GET', '/api/v1/oms/webhooks/');

  for (const r of ctx.receiver.requests.slice(start)) {
    for (const name of ['authorization', 'webhook-signature', 'x-whisperer-signature']) {
      const value = r.headers[name];
      if (typeof value === 'string') {
        secrets.add(value);
        for (const part of value.split(/[ ,]/)) if (part.length > 12) secrets.add(part);
      }
    }
  }
  assert.ok(
    ctx.receiver.requests.slice(start).some((r) => r.headers.authorization?.startsWith('Basic ')),
  );
  assert.ok(
    ctx.receiver.requests
      .slice(start)
      .some((r) => r.headers.authorization?.startsWith('Token issued-')),
  );
  assert.ok(authServer.requests.length >= 2, 'the 401 made the sender fetch a second token');

  const text = captured.join('');
  assert.ok(captured.length > 20, `the logs were captured (${captured.length} lines)`);
  assert.match(text, /"component":"worker"/);
  assert.match(text, /"statusCode":502|source/);
  const leaked = [...secrets].filter((s) => text.includes(s));
  assert.deepEqual(leaked, []);
  const base64Passwords = ['Basic-Pass-Word-31'].map((p) =>
    Buffer.from(`carol:${p}`).toString('base64'),
  );
  for (const b of base64Passwords) assert.ok(!text.includes(b));
});

test('a dump of every table holds no API token key in clear', async () => {
  const { rows: tables } = await ctx.db.query<{ name: string }>(
    `select table_name as name from information_schema.tables
     where table_schema = current_schema() and table_type = 'BASE TABLE' order by 1`,
  );
  assert.ok(tables.some((t) => t.name === 'api_tokens'));
  // one made through the API here too, should the scenario above not have run
  const made = await call(ctx.tokens.admin, 'POST', '/api/v1/oms/tokens/', {
    username: 'dana',
    scope: 'read',
  });
  assert.equal(made.statusCode, 201);
  secrets.add(made.json().key as string);
  const keys = [...secrets].filter((s) => /^[0-9a-f]{40}$/.test(s));
  assert.ok(keys.length >= 4, 'the keys of this file are known');
  let rowsSeen = 0;
  for (const { name } of tables) {
    const { rows } = await ctx.db.query(`select * from "${name}"`);
    rowsSeen += rows.length;
    const dump = JSON.stringify(rows);
    for (const key of keys) assert.ok(!dump.includes(key), `${name} holds an API key in clear`);
  }
  assert.ok(rowsSeen > 20);
});
