/**
 * Worker-only drain profile: N events queued straight into a fresh PostgreSQL schema
 * for W webhooks, one in-process worker delivering them to a receiver in its own
 * process, the time spent in each SQL statement, and this process's CPU per event (the
 * worker's alone). For finding where delivery time goes (BATCH and CONC set the
 * worker's batch size and slots, the service's defaults otherwise; MEM=1 prints the
 * peak RSS; PAD=n pads each payload with n characters; PLAIN=1 leaves out the planner
 * settings the service's worker connections have, WORKER_SERVER_OPTIONS; WORKERS=n
 * shares the slots between n workers; IDLE=n adds n active webhooks with nothing queued,
 * as other tenants' would be):
 *   node --import tsx bench/drain.ts [events=5000] [webhooks=1]
 */
import { spawn } from 'node:child_process';
import pg from 'pg';
import pino from 'pino';
import { systemClock } from '../src/core/clock.js';
import { Sender } from '../src/delivery/sender.js';
import { Worker } from '../src/delivery/worker.js';
import { migrate } from '../src/store/migrate.js';
import type { Queryable } from '../src/store/db.js';
import { WORKER_SERVER_OPTIONS } from '../src/store/open.js';
import { createPgDb } from '../src/store/pg.js';
import { ensureUser } from '../src/store/tokens.js';
import { createTestSchema } from '../test/helpers/db.js';
import { insertOtherWebhooks } from '../test/helpers/rows.js';
import { UUID7_SQL } from './probe.js';

const N = Number(process.argv[2] ?? 5000);
const URL_ = 'postgres://postgres@127.0.0.1:5432/test';
// named after its second, so that a later run or test drops it if this one is killed
const schema = await createTestSchema(URL_, 'drain');
const db = createPgDb({
  connectionString: `${URL_}?options=${encodeURIComponent(`-c search_path=${schema} `)}`,
  max: 10,
  serverOptions: process.env.PLAIN ? undefined : WORKER_SERVER_OPTIONS,
});
await migrate(db);
// The receiver runs in its own process, as in `npm run bench`, so that this process's
// profile is the worker's alone.
const receiver = spawn(process.execPath, ['--import', 'tsx', 'bench/receiver.ts', '0'], {
  cwd: new URL('..', import.meta.url).pathname,
  stdio: ['ignore', 'pipe', 'inherit'],
});
const port = await new Promise<number>((resolve) =>
  receiver.stdout!.once('data', (d: Buffer) => resolve(Number(d.toString().trim()))),
);
const received = async () =>
  ((await (await fetch(`http://127.0.0.1:${port}/stats`)).json()) as { count: number }).count;
const u = await ensureUser(db, 'x', true);
const hooks = Number(process.argv[3] ?? 1);
for (let h = 0; h < hooks; h++)
  await db.query(
    `insert into webhooks (user_id, target_url, secret_key, event_type, retry_countdown_config) values ($1, $2, 'whsec_YWJj', 'package.created', '{"choice":"fixed","kwargs":{"seconds":1}}')`,
    [u.id, `http://127.0.0.1:${port}/h${h}`],
  );
await insertOtherWebhooks(db, u.id, { count: Number(process.env.IDLE ?? 0) });
await db.query(
  `with ins as (insert into hook_events (webhook_id, uuid, event_type) select 1 + (g % $2), ${UUID7_SQL}, 'package.created' from generate_series(1, $1) g returning id, webhook_id), payloads as (insert into hook_event_payloads (hook_event_id, request_payload) select id, json_build_object('payload', json_build_object('seq', id, 'pad', repeat('p', $3))) from ins) insert into hook_event_queue (hook_event_id, webhook_id, run_at, max_attempts) select id, webhook_id, now(), 18 from ins`,
  [N, hooks, Number(process.env.PAD ?? 0)],
);
const stats = new Map<string, { n: number; ms: number }>();
/** Wraps a Queryable so each statement's time is added up under its first words. */
function timed<Q extends Queryable>(q: Q): Q {
  const query = q.query.bind(q);
  const wrapped: Queryable['query'] = async (sql, params, name) => {
    const t = performance.now();
    try {
      return await query(sql, params, name);
    } finally {
      const key = sql.replace(/\s+/g, ' ').trim().slice(0, 60);
      const e = stats.get(key) ?? { n: 0, ms: 0 };
      e.n++;
      e.ms += performance.now() - t;
      stats.set(key, e);
    }
  };
  return Object.assign(q, { query: wrapped });
}
timed(db);
const transaction = db.transaction.bind(db);
db.transaction = (fn) => transaction((tx) => fn(timed(tx)));
const sender = new Sender({ responseCapBytes: 65536, allowPrivateTargets: true });
// WORKERS=n splits the slots between n workers, each claiming for itself: n claims can
// then be in flight at once, where one worker makes them one after another
const workerCount = Number(process.env.WORKERS ?? 1);
const workers = Array.from(
  { length: workerCount },
  () =>
    new Worker({
      db,
      clock: systemClock,
      sender,
      logger: pino({ level: 'warn' }),
      batchSize: Number(process.env.BATCH ?? 200),
      concurrency: Math.ceil(Number(process.env.CONC ?? 100) / workerCount),
      leaseMs: 60000,
      pollIntervalMs: 1000,
      requestTimeoutMs: 10000,
    }),
);
const t0 = performance.now();
const cpu0 = process.cpuUsage();
for (const worker of workers) await worker.start();
const mb = (bytes: number) => `${(bytes / 1e6).toFixed(0)} MB`;
let peak = 0;
while ((await received()) < N) {
  await new Promise((r) => setTimeout(r, 50));
  const m = process.memoryUsage();
  if (m.rss > peak) peak = m.rss;
}
const s = (performance.now() - t0) / 1000;
const cpu = process.cpuUsage(cpu0);
if (process.env.MEM) {
  // peak RSS during the drain; with --expose-gc, also what is live once garbage is collected
  console.log(`peak rss ${mb(peak)}`);
  if (globalThis.gc) {
    globalThis.gc();
    const m = process.memoryUsage();
    console.log(`after gc: rss ${mb(m.rss)}, heap ${mb(m.heapUsed)} of ${mb(m.heapTotal)}`);
  }
}
console.log(`${N} events to ${hooks} webhook(s) in ${s.toFixed(2)} s = ${(N / s).toFixed(0)}/s`);
// this process is the worker's alone: the receiver and PostgreSQL run in others
console.log(
  `worker CPU per event: ${((cpu.user + cpu.system) / N).toFixed(1)} µs (user ${(cpu.user / N).toFixed(1)}, system ${(cpu.system / N).toFixed(1)})`,
);
for (const worker of workers) await worker.stop();
for (const [k, v] of [...stats].sort((a, b) => b[1].ms - a[1].ms).slice(0, 8))
  console.log(v.n, v.ms.toFixed(0) + 'ms', (v.ms / v.n).toFixed(2) + 'ms/q', k);
await sender.close();
await db.close();
receiver.kill();
const d = new pg.Client({ connectionString: URL_ });
await d.connect();
await d.query(`drop schema ${schema} cascade`);
await d.end();
