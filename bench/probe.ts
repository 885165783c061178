/**
 * What the single-phase probes (publish-probe, latency-probe, isolation-probe) share: a
 * fresh PostgreSQL schema with an admin token, webhooks in it, and the service started on
 * that schema from dist/ with extra node flags, answering once /healthz does. With
 * PROBE_DB=pglite the probe runs on the embedded database instead, in a new data
 * directory (isolation-probe, which reads the server's statistics, needs PostgreSQL).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { withServerOptions } from '../src/core/database-url.js';
import type { Db } from '../src/store/db.js';
import { migrate } from '../src/store/migrate.js';
import { createPgDb } from '../src/store/pg.js';
import { createPgliteDb } from '../src/store/pglite.js';
import { createToken, ensureUser } from '../src/store/tokens.js';
import { createTestSchema } from '../test/helpers/db.js';

const PG_URL = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test';
const ROOT = new URL('..', import.meta.url).pathname;

// A probe piped into `head` loses its reader after the first line. The next write then
// failed with EPIPE, which ended the probe before its cleanup: its receiver, its service
// and its schema stayed behind. What cannot be printed is dropped instead.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code !== 'EPIPE') throw error;
});

/**
 * A probe's arguments: positionals before `--`, node flags for its service after it
 * (pg-perf takes the command to profile there).
 */
export function probeArgs(): { args: string[]; nodeFlags: string[] } {
  const dash = process.argv.indexOf('--');
  return dash < 0
    ? { args: process.argv.slice(2), nodeFlags: [] }
    : { args: process.argv.slice(2, dash), nodeFlags: process.argv.slice(dash + 1) };
}

export interface ProbeSchema {
  schema: string;
  db: Db;
  /** A plain client outside the schema, for the server's own statistics (PostgreSQL). */
  admin: pg.Client | undefined;
  /** On PGlite, the data directory; `db` is closed when the service starts on it. */
  dataDir?: string;
  /** The `Authorization` header of an admin token. */
  auth: { authorization: string };
  userId: number;
  drop(): Promise<void>;
}

/** The admin user and its token, in a database just migrated. */
async function probeUser(db: Db): Promise<{ userId: number; auth: { authorization: string } }> {
  await migrate(db);
  const user = await ensureUser(db, 'probe', true);
  const { key } = await createToken(db, user.id, 'probe');
  return { userId: user.id, auth: { authorization: `Token ${key}` } };
}

async function pgliteProbe(): Promise<ProbeSchema> {
  const dataDir = mkdtempSync(join(tmpdir(), 'oms-probe-'));
  const db = await createPgliteDb(dataDir);
  const drop = async () => {
    await db.close();
    rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    return { schema: '', db, admin: undefined, dataDir, ...(await probeUser(db)), drop };
  } catch (error) {
    await drop();
    throw error;
  }
}

export async function probeSchema(): Promise<ProbeSchema> {
  if (process.env.PROBE_DB === 'pglite') return pgliteProbe();
  // named after its second, so that a later probe or test drops it if this one is killed
  const schema = await createTestSchema(PG_URL, 'probe');
  const admin = new pg.Client({ connectionString: PG_URL });
  await admin.connect();
  const db = createPgDb({ connectionString: PG_URL, schema, max: 2 });
  const drop = async () => {
    await db.close();
    await admin.query(`drop schema ${schema} cascade`);
    await admin.end();
  };
  try {
    return { schema, db, admin, ...(await probeUser(db)), drop };
  } catch (error) {
    await drop();
    throw error;
  }
}

/**
 * A webhook for `eventType` at `target`, retried every `retrySeconds`, with `config` as
 * its settings (its limits); its id.
 */
export async function addWebhook(
  p: ProbeSchema,
  target: string,
  {
    eventType = 'package.created',
    active = true,
    retrySeconds = 1,
    config = {} as Record<string, unknown>,
  } = {},
): Promise<number> {
  const { rows } = await p.db.query<{ id: number }>(
    `insert into webhooks (user_id, target_url, is_active, secret_key, event_type, config,
                           retry_countdown_config)
     values ($1, $2, $3, 'whsec_cHJvYmVwcm9iZXByb2JlcHJvYmU=', $4, $6::jsonb,
             jsonb_build_object('choice', 'fixed', 'kwargs', jsonb_build_object('seconds', $5::int)))
     returning id`,
    [p.userId, target, active, eventType, retrySeconds, JSON.stringify(config)],
  );
  return rows[0]!.id;
}

/**
 * `serve` on the probe's schema with the given role and node flags (`--cpu-prof`, ...).
 * PROBE_PG_OPTIONS adds server settings to its connections
 * (`-c log_min_duration_statement=0` logs every statement with its time), and
 * PROBE_LOG_LEVEL sets the service's log level (warn unless given; info logs every
 * request, and what maintenance did).
 */
export async function startProbeService(
  p: ProbeSchema,
  { role = 'all', nodeFlags = [] as string[] } = {},
): Promise<{ api: string; pid: number; stop(): Promise<void> }> {
  let database: Record<string, string>;
  if (p.dataDir) {
    await p.db.close(); // the service takes the data directory's lock
    database = { DATABASE_URL: '', DATA_DIR: p.dataDir };
  } else {
    const options = `-c search_path=${p.schema} ${process.env.PROBE_PG_OPTIONS ?? ''}`.trim();
    database = { DATABASE_URL: withServerOptions(PG_URL, options) };
  }
  const port = 19_000 + Math.floor(Math.random() * 1000);
  const api = `http://127.0.0.1:${port}`;
  const child: ChildProcess = spawn(
    process.execPath,
    [...nodeFlags, 'dist/cli/main.js', 'serve', '--port', String(port), '--role', role],
    {
      cwd: ROOT,
      env: {
        ...process.env,
        ...database,
        LOG_LEVEL: process.env.PROBE_LOG_LEVEL ?? 'warn',
        ALLOW_PRIVATE_TARGETS: '1',
        RATE_LIMIT_PER_SECOND: '0',
      },
      stdio: 'inherit',
    },
  );
  const stop = () =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    });
  for (let i = 0; i < 100; i++) {
    try {
      if ((await fetch(`${api}/healthz`)).ok) return { api, pid: child.pid!, stop };
    } catch {
      /* not yet */
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  await stop();
  throw new Error('the service did not start');
}

/**
 * A version 7 uuid in SQL, as the service gives each event it publishes (newEventUuid):
 * the milliseconds of the row's clock_timestamp(), then random hex, the version and the
 * variant. Seeded events with random (version 4) uuids would scatter the uuid index's
 * writes where the service's own stay at its right edge.
 */
export const UUID7_SQL = `(lpad(to_hex(floor(extract(epoch from clock_timestamp()) * 1000)::bigint), 12, '0')
  || '7' || substr(md5(random()::text), 1, 3) || substr('89ab', 1 + floor(random() * 4)::int, 1)
  || substr(md5(random()::text), 1, 15))::uuid`;

/**
 * `n` hook events for `webhookId`, 100,000 to a statement: queued (due at once, each
 * statement's at the same time) and/or already attempted (nine in ten delivered), as
 * the benchmark's backlog and stored-events phases seed them.
 */
export async function seedEvents(
  db: Db,
  webhookId: number,
  n: number,
  opts: { queued: boolean; attempted: boolean },
) {
  const chunk = 100_000;
  for (let from = 1; from <= n; from += chunk) {
    const to = Math.min(n, from + chunk - 1);
    await db.query(
      `with ins as (
         insert into hook_events (webhook_id, uuid, event_type, object_id, content_type_id,
                                  delivered, retry_count, response_http_status, response_content, request_datetimes)
         select $1, ${UUID7_SQL}, 'package.created', to_jsonb(g), 4,
                case when $4 then g % 10 <> 0 else false end,
                case when $4 then 1 else null end,
                case when $4 then (case when g % 10 = 0 then 500 else 200 end) else null end,
                case when $4 then 'ok' else null end,
                case when $4 then array[now()] else '{}'::timestamptz[] end
         from generate_series($2::int, $3::int) g
         returning id, webhook_id, object_id, uuid
       ), payloads as (
         insert into hook_event_payloads (hook_event_id, request_payload)
         select id, json_build_object(
                  -- the event's own uuid in hex, as the service writes it into the payload
                  'event', json_build_object('type', 'package.created', 'uuid', replace(uuid::text, '-', '')),
                  'payload', json_build_object('seq', object_id, 'pad', repeat('p', 200)))
         from ins
       )
       insert into hook_event_queue (hook_event_id, webhook_id, run_at, max_attempts)
       select id, webhook_id, now(), 18 from ins where $5`,
      [webhookId, from, to, opts.attempted, opts.queued],
    );
  }
}
