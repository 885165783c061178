import { randomUUID } from 'node:crypto';
import { spawn, type ChildProcess } from 'node:child_process';
import { after, before } from 'node:test';
import pg from 'pg';
import { isoMicro } from '../../src/core/clock.js';
import { withServerOptions } from '../../src/core/database-url.js';
import { enqueueHookEvents } from '../../src/queue/enqueue.js';
import type { Db } from '../../src/store/db.js';
import { migrate } from '../../src/store/migrate.js';
import { createPgDb } from '../../src/store/pg.js';
import { createToken, ensureUser } from '../../src/store/tokens.js';
import { insertWebhook, type WebhookInput } from '../../src/store/webhooks.js';
import { api, BIN } from '../helpers/cli.js';
import { createTestSchema } from '../helpers/db.js';
import { freePort } from '../helpers/ports.js';
import { TallyReceiver } from './tally-receiver.js';

/**
 * The real binary (compiled dist/, `npm run build` first) as separate processes on one
 * PostgreSQL schema. Every setting goes through the environment, as an operator's would.
 */
export { api, BIN };

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `check` until it returns true; fails after `timeoutMs` (an upper bound, not a threshold). */
export async function waitUntil(
  check: () => boolean | Promise<boolean>,
  timeoutMs: number,
  what: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(100);
  }
}

/** The same server, every connection starting in `schema` (pg passes `options` on). */
export function urlWithSchema(url: string, schema: string): string {
  return withServerOptions(url, `-c search_path=${schema}`);
}

export interface Schema {
  /** DATABASE_URL for child processes. */
  url: string;
  /** The test's own connection to the schema, for setup and assertions. */
  db: Db;
  drop(): Promise<void>;
}

/** A fresh, migrated schema of its own on the server at `baseUrl`. */
export async function createSchema(baseUrl: string): Promise<Schema> {
  const schema = await createTestSchema(baseUrl, 'p');
  const db = createPgDb({ connectionString: baseUrl, schema, max: 4, reconnectMs: 200 });
  await migrate(db);
  return {
    url: urlWithSchema(baseUrl, schema),
    db,
    async drop() {
      await db.close();
      const c = new pg.Client({ connectionString: baseUrl });
      await c.connect();
      await c.query(`drop schema ${schema} cascade`);
      await c.end();
    },
  };
}

export interface Proc {
  child: ChildProcess;
  output(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves once the output matches (rejects if the process exits first or on timeout). */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<void>;
}

export interface Fixture {
  schema: Schema;
  receiver: TallyReceiver;
  /** The number a `select count(*)::int as n ...` on the schema answers. */
  count(sql: string): Promise<number>;
}

/**
 * Gives a test file its own schema on the shared PostgreSQL and a tally receiver,
 * made before its tests and removed after them; nothing at all when the file is skipped.
 */
export function processFixture(skip: string | false): Fixture {
  const fixture = {
    async count(sql: string) {
      return (await fixture.schema.db.query<{ n: number }>(sql)).rows[0]!.n;
    },
  } as Fixture;
  before(async () => {
    if (skip) return;
    fixture.schema = await createSchema(process.env.DATABASE_URL!);
    fixture.receiver = await TallyReceiver.start();
  });
  after(async () => {
    if (skip) return;
    await fixture.receiver.close();
    await fixture.schema.drop();
  });
  return fixture;
}

/** Settings small enough that a test takes seconds; each test overrides what it studies. */
export const FAST = {
  ALLOW_PRIVATE_TARGETS: '1',
  LOG_LEVEL: 'info',
  REQUEST_TIMEOUT_MS: '2000',
  LEASE_MS: '5000',
  POLL_INTERVAL_MS: '200',
  HEARTBEAT_MS: '300',
  MAINTENANCE_INTERVAL_MS: '500',
};

export function spawnServe(
  role: 'all' | 'api' | 'worker' | 'maintenance',
  env: Record<string, string>,
): Proc {
  const child = spawn(BIN, ['serve', '--role', role], {
    env: { ...process.env, ...FAST, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const onData = (d: Buffer) => {
    out += d.toString();
    // Keep memory bounded on long runs: only the tail matters for diagnostics.
    if (out.length > 2_000_000) out = out.slice(-1_000_000);
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  return {
    child,
    output: () => out,
    exited,
    async waitFor(pattern, timeoutMs = 30_000) {
      await waitUntil(
        () => {
          if (pattern.test(out)) return true;
          if (child.exitCode !== null || child.signalCode !== null)
            throw new Error(`${role} exited before ${String(pattern)}:\n${out.slice(-4000)}`);
          return false;
        },
        timeoutMs,
        `${role} to print ${String(pattern)}`,
      );
    },
  };
}

/**
 * Starts a process and waits until it is serving (API) or running (the other roles). A
 * role that listens gets a free port unless `env` names one: the default, 8000, may be
 * taken by a service the developer runs beside the tests.
 */
export async function startServe(
  role: 'all' | 'api' | 'worker' | 'maintenance',
  env: Record<string, string>,
): Promise<Proc> {
  const listens = role === 'all' || role === 'api';
  const port = env.PORT ?? (listens ? String(await freePort()) : undefined);
  const proc = spawnServe(role, port === undefined ? env : { ...env, PORT: port });
  await proc.waitFor(/oms-hooks is (listening|running)/);
  return proc;
}

/** Ends a process we started, by its own handle, and waits for it to be gone. */
export async function kill(proc: Proc, signal: NodeJS.Signals = 'SIGKILL') {
  if (proc.child.exitCode === null && proc.child.signalCode === null) proc.child.kill(signal);
  return proc.exited;
}

export async function adminToken(db: Db): Promise<string> {
  return (await createToken(db, (await ensureUser(db, 'admin', true)).id)).key;
}

export async function seedWebhook(
  db: Db,
  targetUrl: string,
  extra: Partial<WebhookInput> = {},
): Promise<number> {
  const user = await ensureUser(db, 'admin', true);
  const webhook = await insertWebhook(db, user.id, {
    retry_countdown_config: { choice: 'fixed', kwargs: { seconds: 1 } },
    target_url: targetUrl,
    is_active: true,
    secret_key: 'whsec_dGVzdHNlY3JldA==',
    event_type: 'package.created',
    callback: null,
    additional_headers: {},
    config: {},
    ...extra,
  } as WebhookInput);
  return webhook.id;
}

/** Queues `count` events for a webhook, due now, through the same enqueue the API uses. */
export async function seedEvents(db: Db, webhookId: number, count: number): Promise<string[]> {
  const uuids = Array.from({ length: count }, () => randomUUID());
  await db.transaction((tx) =>
    enqueueHookEvents(
      tx,
      uuids.map((uuid, i) => ({
        webhookId,
        uuid,
        eventType: 'package.created',
        requestPayload: JSON.stringify({
          event: { type: 'package.created', uuid: uuid.replaceAll('-', '') },
          payload: { n: i },
        }),
        objectId: i,
        contentTypeId: 4,
        maxAttempts: 18,
      })),
      isoMicro(Date.now()),
    ),
  );
  return uuids;
}
