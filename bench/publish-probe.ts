/**
 * Publish, for profiling: a fresh schema, one webhook, the service started with the
 * given role, and a closed loop of publish-event for a few seconds. With role api (the
 * default) nothing is delivered and no worker competes; with role all the webhook points
 * at the bench's receiver and the events are delivered while they are published, as in
 * the benchmark's publish phase. Extra node flags (--cpu-prof) go to the service and
 * its worker processes. PROBE_PG_OPTIONS adds server settings to the service's
 * connections (`-c log_min_duration_statement=0` logs every statement with its time).
 *
 *   node --import tsx bench/publish-probe.ts [seconds] [role] [-- node flags]
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { migrate } from '../src/store/migrate.js';
import { createPgDb } from '../src/store/pg.js';
import { createToken, ensureUser } from '../src/store/tokens.js';
import { closedLoop, makePool } from './load.js';
import { startProcess } from './processes.js';

const dash = process.argv.indexOf('--');
const args = dash < 0 ? process.argv.slice(2) : process.argv.slice(2, dash);
const nodeFlags = dash < 0 ? [] : process.argv.slice(dash + 1);
const seconds = Number(args[0] ?? 5);
const role = args[1] ?? 'api';
const PG_URL = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test';
const ROOT = new URL('..', import.meta.url).pathname;

const schema = `probe_${randomBytes(4).toString('hex')}`;
const receiver =
  role === 'api' ? undefined : await startProcess(['--import', 'tsx', 'bench/receiver.ts', '0']);
const origin = receiver ? `http://127.0.0.1:${receiver.port}` : undefined;
// with role api nothing is delivered: the target is a port where nobody listens
const target = origin ? `${origin}/probe/` : 'http://127.0.0.1:9/';
const admin = new pg.Client({ connectionString: PG_URL });
await admin.connect();
await admin.query(`create schema ${schema}`);
const db = createPgDb({ connectionString: PG_URL, schema, max: 2 });
try {
  await migrate(db);
  const user = await ensureUser(db, 'probe', true);
  const { key } = await createToken(db, user.id, 'probe');
  const hook = (
    await db.query<{ id: number }>(
      `insert into webhooks (user_id, target_url, secret_key, event_type, retry_countdown_config)
       values ($1, $2, 'whsec_cHJvYmVwcm9iZXByb2JlcHJvYmU=', 'package.created',
               '{"choice":"fixed","kwargs":{"seconds":60}}') returning id`,
      [user.id, target],
    )
  ).rows[0]!.id;
  const url = new URL(PG_URL);
  url.searchParams.set('options', `-c search_path=${schema} ${process.env.PROBE_PG_OPTIONS ?? ''}`);
  const port = 19_000 + Math.floor(Math.random() * 1000);
  const child = spawn(
    process.execPath,
    [...nodeFlags, 'dist/cli/main.js', 'serve', '--port', String(port), '--role', role],
    {
      cwd: ROOT,
      env: {
        ...process.env,
        DATABASE_URL: url.toString(),
        LOG_LEVEL: 'warn',
        ALLOW_PRIVATE_TARGETS: '1',
        RATE_LIMIT_PER_SECOND: '0',
      },
      stdio: 'inherit',
    },
  );
  for (let i = 0; i < 100; i++) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/healthz`)).ok) break;
    } catch {
      /* not yet */
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const pool = makePool(`http://127.0.0.1:${port}`);
  const body = (i: number) =>
    JSON.stringify({ hook, instance: { pk: i, model: 'package', data: { pad: 'p'.repeat(900) } } });
  const r = await closedLoop(
    pool,
    {
      origin: '',
      path: '/api/v1/oms/oms_hook_events/publish-event/',
      headers: { authorization: `Token ${key}` },
      body,
      expect: 202,
    },
    seconds,
    64,
  );
  await pool.close();
  process.stdout.write(
    `publish: ${r.perSecond.toFixed(0)} req/s, ${r.errors} errors of ${r.requests}\n`,
  );
  if (origin) {
    const t = performance.now();
    const want = r.requests - r.errors;
    const arrived = async () =>
      ((await (await fetch(`${origin}/stats`)).json()) as { distinct: number }).distinct;
    let got = await arrived();
    while (got < want && performance.now() - t < 60_000) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      got = await arrived();
    }
    process.stdout.write(
      `delivered ${got} of ${want}, ${((performance.now() - t) / 1000).toFixed(2)} s after the last publish\n`,
    );
  }
  await new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
} finally {
  receiver?.child.kill('SIGTERM');
  await db.close();
  await admin.query(`drop schema ${schema} cascade`);
  await admin.end();
}
