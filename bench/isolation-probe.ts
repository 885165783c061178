/**
 * The benchmark's isolation phase alone, repeated: a fresh schema, 20 healthy webhooks
 * and a 21st whose target hangs until the sender's timeout, the service started with
 * every role, and runs of emits alternating without and with the hanging webhook. Prints
 * each run's healthy deliveries per second and the transactions the database committed
 * per healthy delivery (claims, records and publishes all count), then the ratio.
 *
 *   node --import tsx bench/isolation-probe.ts [pairs=3] [emits=2000] [-- node flags]
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { migrate } from '../src/store/migrate.js';
import { createPgDb } from '../src/store/pg.js';
import { createToken, ensureUser } from '../src/store/tokens.js';
import { makePool } from './load.js';
import { startProcess } from './processes.js';

const dash = process.argv.indexOf('--');
const args = dash < 0 ? process.argv.slice(2) : process.argv.slice(2, dash);
const nodeFlags = dash < 0 ? [] : process.argv.slice(dash + 1);
const pairs = Number(args[0] ?? 3);
const emits = Number(args[1] ?? 2_000);
const PG_URL = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test';
const ROOT = new URL('..', import.meta.url).pathname;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const schema = `probe_${randomBytes(4).toString('hex')}`;
const receiver = await startProcess(['--import', 'tsx', 'bench/receiver.ts', '0']);
const recv = `http://127.0.0.1:${receiver.port}`;
const admin = new pg.Client({ connectionString: PG_URL });
await admin.connect();
await admin.query(`create schema ${schema}`);
const db = createPgDb({ connectionString: PG_URL, schema, max: 2 });
try {
  await migrate(db);
  const user = await ensureUser(db, 'probe', true);
  const { key } = await createToken(db, user.id, 'probe');
  const mk = async (target: string, active: boolean) =>
    (
      await db.query<{ id: number }>(
        `insert into webhooks (user_id, target_url, is_active, secret_key, event_type, retry_countdown_config)
         values ($1, $2, $3, 'whsec_cHJvYmVwcm9iZXByb2JlcHJvYmU=', 'order.updated',
                 '{"choice":"fixed","kwargs":{"seconds":1}}') returning id`,
        [user.id, target, active],
      )
    ).rows[0]!.id;
  for (let i = 0; i < 20; i++) await mk(`${recv}/ok/${i}`, true);
  const hanging = await mk(`${recv}/hang/`, false);
  const url = new URL(PG_URL);
  url.searchParams.set('options', `-c search_path=${schema}`);
  const port = 19_000 + Math.floor(Math.random() * 1000);
  const api = `http://127.0.0.1:${port}`;
  const child = spawn(
    process.execPath,
    [...nodeFlags, 'dist/cli/main.js', 'serve', '--port', String(port)],
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
      if ((await fetch(`${api}/healthz`)).ok) break;
    } catch {
      /* not yet */
    }
    await sleep(100);
  }
  const auth = { authorization: `Token ${key}` };
  const stats = async () =>
    (await (await fetch(`${recv}/stats`)).json()) as { count: number; hanging: number };
  const commits = async () =>
    Number(
      (
        await admin.query<{ n: string }>(
          `select xact_commit as n from pg_stat_database where datname = current_database()`,
        )
      ).rows[0]!.n,
    );
  const emitRun = async () => {
    await fetch(`${recv}/reset`, { method: 'POST' });
    await admin.query('select pg_stat_clear_snapshot()');
    const before = await commits();
    const started = performance.now();
    const pool = makePool(api, 16);
    const emit = (n: number) =>
      pool
        .request({
          method: 'POST',
          path: '/api/v1/oms/oms_hook_events/emit/',
          headers: { ...auth, 'content-type': 'application/json' },
          body: JSON.stringify({
            event_type: 'order.updated',
            instance: { pk: n, model: 'order', data: { n } },
          }),
        })
        .then((r) => r.body.dump());
    for (let i = 0; i < emits; i += 16)
      await Promise.all(Array.from({ length: Math.min(16, emits - i) }, (_, k) => emit(i + k)));
    while ((await stats()).count < emits * 20) await sleep(20);
    const seconds = (performance.now() - started) / 1000;
    await pool.close();
    // statistics reach pg_stat_database within the stats flush interval (about a second)
    await sleep(1_500);
    await admin.query('select pg_stat_clear_snapshot()');
    const perDelivery = ((await commits()) - before) / (emits * 20);
    return { perSecond: (await stats()).count / seconds, perDelivery };
  };
  const setHanging = (active: boolean) =>
    fetch(`${api}/api/v1/oms/webhooks/${hanging}/`, {
      method: 'PATCH',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ is_active: active }),
    }).then((r) => r.arrayBuffer());
  await emitRun(); // warm-up
  const runs = { without: [] as number[], with: [] as number[] };
  for (let p = 0; p < pairs; p++) {
    for (const hang of p % 2 === 0 ? [false, true] : [true, false]) {
      await setHanging(hang);
      if (!hang) {
        do {
          await fetch(`${recv}/unhang`, { method: 'POST' });
          await sleep(300);
        } while ((await stats()).hanging > 0);
      }
      const r = await emitRun();
      (hang ? runs.with : runs.without).push(r.perSecond);
      process.stdout.write(
        `${hang ? 'with   ' : 'without'} ${r.perSecond.toFixed(0)} deliveries/s, ${r.perDelivery.toFixed(3)} commits per delivery\n`,
      );
    }
  }
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  process.stdout.write(`ratio ${(mean(runs.with) / mean(runs.without)).toFixed(3)}\n`);
  await fetch(`${recv}/unhang`, { method: 'POST' });
  await new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
} finally {
  receiver.child.kill('SIGTERM');
  await db.close();
  await admin.query(`drop schema ${schema} cascade`);
  await admin.end();
}
