import type { FastifyInstance, InjectOptions, LightMyRequestResponse, RouteOptions } from 'fastify';
import pino from 'pino';
import { buildApp } from '../../src/api/app.js';
import { ManualClock } from '../../src/core/clock.js';
import { loadConfig, type Config } from '../../src/config/config.js';
import { Sender } from '../../src/delivery/sender.js';
import { Worker } from '../../src/delivery/worker.js';
import type { Db } from '../../src/store/db.js';
import { createToken, ensureUser } from '../../src/store/tokens.js';
import { testDb } from './db.js';
import { Receiver } from './receiver.js';

/**
 * Everything a test needs: a migrated database, the real API (driven with inject), a
 * worker driven with runOnce() on a manual clock, a real receiver on 127.0.0.1, and
 * tokens for an admin and two ordinary users.
 */
export interface Context {
  db: Db;
  clock: ManualClock;
  config: Config;
  app: FastifyInstance;
  worker: Worker;
  sender: Sender;
  receiver: Receiver;
  tokens: { admin: string; alice: string; bob: string };
  /** app.inject with `Authorization: Token <key>` for the named user (default admin). */
  api(
    options: InjectOptions & { as?: 'admin' | 'alice' | 'bob' | null },
  ): Promise<LightMyRequestResponse>;
  /** Creates a webhook through the API (as `as`, default admin) pointing at the receiver. */
  createWebhook(
    body?: Record<string, unknown>,
    as?: 'admin' | 'alice' | 'bob',
  ): Promise<Record<string, unknown>>;
  /** Publishes through the API; returns the HTTP status. */
  publish(
    hook: number,
    data?: Record<string, unknown>,
    extra?: Record<string, unknown>,
  ): Promise<number>;
  close(): Promise<void>;
}

export async function createContext(
  overrides: Record<string, string> = {},
  /** What the API sees of the database (a wrapper that holds some statements, say). */
  apiDb: (db: Db) => Db = (db) => db,
): Promise<Context> {
  const { db, drop } = await testDb();
  const clock = new ManualClock(Date.parse('2026-01-15T10:00:00.000Z'));
  const config = loadConfig({
    ALLOW_PRIVATE_TARGETS: '1',
    REQUEST_TIMEOUT_MS: '2000',
    LEASE_MS: '30000',
    ...overrides,
  });
  const sender = new Sender({
    responseCapBytes: config.responseCapBytes,
    allowPrivateTargets: config.allowPrivateTargets,
    allowedTargetCidrs: config.allowedTargetCidrs,
  });
  const app = buildApp({ db: apiDb(db), clock, config, sender });
  await app.ready();
  const worker = new Worker({
    db,
    clock,
    sender,
    logger: pino({ level: 'silent' }),
    batchSize: config.workerBatchSize,
    concurrency: config.workerConcurrency,
    leaseMs: config.leaseMs,
    pollIntervalMs: config.pollIntervalMs,
    requestTimeoutMs: config.requestTimeoutMs,
    workerId: 'test-worker',
  });
  const receiver = await Receiver.start();
  const keyFor = async (name: string, admin: boolean) =>
    (await createToken(db, (await ensureUser(db, name, admin)).id)).key;
  const tokens = {
    admin: await keyFor('admin', true),
    alice: await keyFor('alice', false),
    bob: await keyFor('bob', false),
  };

  const ctx: Context = {
    db,
    clock,
    config,
    app,
    worker,
    sender,
    receiver,
    tokens,
    api({ as = 'admin', headers, ...options }) {
      return app.inject({
        ...options,
        headers: { ...(as ? { authorization: `Token ${tokens[as]}` } : {}), ...headers },
      });
    },
    async createWebhook(body = {}, as = 'admin') {
      const res = await ctx.api({
        method: 'POST',
        url: '/api/v1/oms/webhooks/',
        as,
        payload: { target_url: receiver.url(), event_type: 'package.created', ...body },
      });
      if (res.statusCode !== 201)
        throw new Error(`webhook not created: ${res.statusCode} ${res.body}`);
      return res.json();
    },
    async publish(hook, data = { number: 'P1' }, extra = {}) {
      const res = await ctx.api({
        method: 'POST',
        url: '/api/v1/oms/oms_hook_events/publish-event/',
        payload: { hook, instance: { pk: 1, model: 'package', data }, ...extra },
      });
      return res.statusCode;
    },
    async close() {
      await app.close();
      await sender.close();
      await receiver.close();
      await drop();
    },
  };
  return ctx;
}

/**
 * The API as the service builds it (buildApp), ready, with the context's database,
 * clock, config and sender, and every route it added as Fastify's onRoute saw it (HEAD
 * routes included): for tests that go over all routes rather than a list kept by hand.
 */
export async function apiWithRoutes(
  ctx: Context,
): Promise<{ app: FastifyInstance; routes: RouteOptions[] }> {
  const app = buildApp({ db: ctx.db, clock: ctx.clock, config: ctx.config, sender: ctx.sender });
  const routes: RouteOptions[] = [];
  // the API's plugin runs at ready(), so this hook, added first, sees each of its routes
  app.addHook('onRoute', (route) => {
    routes.push(route);
  });
  await app.ready();
  return { app, routes };
}
