/**
 * What a sweep (a claim that looks at every webhook with events queued) costs beside
 * many webhooks: one webhook with events due, IDLE=n active webhooks of other tenants
 * with nothing queued, WAITING=n more with one event each queued for a retry an hour
 * away and LIMITED=n more with a shared limit (max_concurrency) and nothing queued, then
 * `rounds` sweeps of 10 events one after another, timed from this process after 20 to
 * warm up. PROBE_DB=pglite runs it on the embedded database.
 *
 *   IDLE=5000 WAITING=500 LIMITED=500 node --import tsx bench/sweep-probe.ts [rounds=200]
 */
import { isoMicro } from '../src/core/clock.js';
import { claimBatch } from '../src/queue/claim.js';
import { enqueueHookEvents } from '../src/queue/enqueue.js';
import { insertOtherWebhooks, insertWaitingEvents, newHookEvent } from '../test/helpers/rows.js';
import { addWebhook, probeArgs, probeSchema } from './probe.js';

const { args } = probeArgs();
const rounds = Number(args[0] ?? 200);
const idle = Number(process.env.IDLE ?? 0);
const waiting = Number(process.env.WAITING ?? 0);
const limited = Number(process.env.LIMITED ?? 0);

const probe = await probeSchema();
try {
  const { db } = probe;
  const busy = await addWebhook(probe, 'http://127.0.0.1:9/', { retrySeconds: 60 });
  await insertOtherWebhooks(db, probe.userId, {
    count: limited,
    config: { max_concurrency: 5 },
  });
  // inserted last, for insertWaitingEvents
  await insertOtherWebhooks(db, probe.userId, { count: idle + waiting, from: limited + 1 });
  await insertWaitingEvents(db, waiting);
  const warmup = 20;
  await db.transaction((tx) =>
    enqueueHookEvents(
      tx,
      Array.from({ length: (warmup + rounds) * 10 }, (_, n) => newHookEvent(busy, n)),
      isoMicro(Date.now() - 1_000),
    ),
  );
  await db.query('vacuum analyze');
  const sweep = () =>
    claimBatch(db, {
      workerId: 'sweep-probe',
      now: isoMicro(Date.now()),
      leaseMs: 600_000,
      limit: 10,
      gate: false,
      room: new Map([[busy, 100]]),
    });
  for (let i = 0; i < warmup; i++) await sweep();
  const t0 = performance.now();
  for (let i = 0; i < rounds; i++) await sweep();
  const ms = (performance.now() - t0) / rounds;
  process.stdout.write(
    `idle ${idle}, waiting ${waiting}, limited ${limited}: ${ms.toFixed(2)} ms per sweep of 10 events\n`,
  );
} finally {
  await probe.drop();
}
