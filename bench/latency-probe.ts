/**
 * Publish-to-arrival latency, for finding where its tail comes from: a fresh schema,
 * one webhook at the bench's receiver, the service started with every role, an
 * optional closed loop of publishes first (to grow the tables and the dead rows as the
 * benchmark's earlier phases do), then publishes at a fixed rate. Prints p50, p99 and
 * max of the publish requests alone and of publish to arrival, and the slowest seconds.
 * Extra node flags go to the service and its worker processes; PROBE_PG_OPTIONS adds
 * server settings to the service's connections.
 *
 *   node --import tsx bench/latency-probe.ts [seconds] [rate] [warm-up seconds] [-- node flags]
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { migrate } from '../src/store/migrate.js';
import { createPgDb } from '../src/store/pg.js';
import { createToken, ensureUser } from '../src/store/tokens.js';
import { closedLoop, makePool, openLoop, percentile, type Target } from './load.js';
import { startProcess } from './processes.js';

const dash = process.argv.indexOf('--');
const args = dash < 0 ? process.argv.slice(2) : process.argv.slice(2, dash);
const nodeFlags = dash < 0 ? [] : process.argv.slice(dash + 1);
const seconds = Number(args[0] ?? 15);
const rate = Number(args[1] ?? 2_000);
const warmSeconds = Number(args[2] ?? 0);
const PG_URL = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test';
const ROOT = new URL('..', import.meta.url).pathname;

const schema = `probe_${randomBytes(4).toString('hex')}`;
const receiver = await startProcess(['--import', 'tsx', 'bench/receiver.ts', '0']);
const origin = `http://127.0.0.1:${receiver.port}`;
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
               '{"choice":"fixed","kwargs":{"seconds":1}}') returning id`,
      [user.id, `${origin}/seq/`],
    )
  ).rows[0]!.id;
  const url = new URL(PG_URL);
  url.searchParams.set('options', `-c search_path=${schema} ${process.env.PROBE_PG_OPTIONS ?? ''}`);
  const port = 19_000 + Math.floor(Math.random() * 1000);
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
      if ((await fetch(`http://127.0.0.1:${port}/healthz`)).ok) break;
    } catch {
      /* not yet */
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const pool = makePool(`http://127.0.0.1:${port}`);
  const stats = async () =>
    ((await (await fetch(`${origin}/stats`)).json()) as { distinct: number }).distinct;
  const until = async (want: number) => {
    const t = performance.now();
    while ((await stats()) < want && performance.now() - t < 120_000)
      await new Promise((resolve) => setTimeout(resolve, 50));
  };
  const target = (base: number, onSend?: (seq: number) => void): Target => ({
    origin: '',
    path: '/api/v1/oms/oms_hook_events/publish-event/',
    headers: { authorization: `Token ${key}` },
    body: (i) => {
      onSend?.(base + i);
      return JSON.stringify({
        hook,
        instance: { pk: i, model: 'package', data: { seq: base + i, pad: 'p'.repeat(900) } },
      });
    },
    expect: 202,
  });
  if (warmSeconds > 0) {
    const warm = await closedLoop(pool, target(0), warmSeconds, 64);
    await until(warm.requests - warm.errors);
    process.stdout.write(`warm-up: ${warm.requests} published and delivered\n`);
    await fetch(`${origin}/reset`, { method: 'POST' });
  }
  const base = 10_000_000;
  const sentAt = new Map<number, number>();
  const started = performance.timeOrigin + performance.now();
  const steady = await openLoop(
    pool,
    target(base, (seq) => sentAt.set(seq, performance.timeOrigin + performance.now())),
    seconds,
    rate,
  );
  await until(steady.requests - steady.errors);
  const arrivals = (await (await fetch(`${origin}/arrivals`)).json()) as Record<string, number>;
  const lat: number[] = [];
  const worstBySecond = new Map<number, number>();
  for (const [seq, at] of Object.entries(arrivals)) {
    const sent = sentAt.get(Number(seq));
    if (sent === undefined) continue;
    lat.push(at - sent);
    const second = Math.floor((sent - started) / 1000);
    worstBySecond.set(second, Math.max(worstBySecond.get(second) ?? 0, at - sent));
  }
  const fmt = (v: number[]) =>
    `p50 ${percentile(v, 50).toFixed(1)} p99 ${percentile(v, 99).toFixed(1)} max ${Math.max(...v).toFixed(1)} ms`;
  process.stdout.write(
    `${steady.requests} at ${rate}/s, ${steady.errors} errors\n` +
      `publish requests: ${fmt(steady.latenciesMs)}\n` +
      `publish to arrival: ${fmt(lat)} (${lat.length} measured)\n` +
      `worst arrival by second: ${[...worstBySecond.entries()]
        .sort((a, b) => a[0] - b[0])
        .map(([s, ms]) => `${s}:${ms.toFixed(0)}`)
        .join(' ')}\n`,
  );
  await pool.close();
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
