/**
 * A schema change, side by side: two fresh databases, A as migrated and B with a SQL
 * file applied after migrating, and the same statements run on each in turn, so that
 * the machine's drift falls on both alike. Which side goes first alternates from round
 * to round: on PGlite, with A always first, A/A pairs read B faster by 0-23% (six
 * runs), and alternated by 2-5% (three). What it runs:
 *
 * - `enqueue`: the publish statement (`enqueueCommitted`), `size` events of 1 KB to a
 *   statement;
 * - `record`: the statement that records delivered attempts (`recordAttempts`), for
 *   `size` events enqueued just before (their enqueue is not counted), each answered
 *   200 (`STATUS=n` for another status; one that is not a 2xx records a failure).
 *
 * On PostgreSQL it reads the CPU each side's backend used (Linux's /proc, so the server
 * must run on this machine), on PGlite (PROBE_DB=pglite) the wall time of each call,
 * since PGlite runs in this process. An empty file gives an A/A pair: the noise.
 *
 *   node --import tsx bench/schema-ab.ts <enqueue|record> <size> <events> <B.sql>
 *   node --import tsx bench/schema-ab.ts enqueue 64 30000 bench/schema-ab/keys.sql
 */
import { readFileSync } from 'node:fs';
import { isoMicro } from '../src/core/clock.js';
import { isDeliveredStatus } from '../src/core/delivered.js';
import { newEventUuid } from '../src/core/ids.js';
import { enqueueCommitted, type NewHookEvent } from '../src/queue/enqueue.js';
import { recordAttempts, type AttemptOutcome } from '../src/queue/record.js';
import { splitStatements } from '../src/store/migrate.js';
import { addWebhook, probeSchema, type ProbeSchema } from './probe.js';
import { cpuMicros } from './processes.js';

const [statement, sizeArg, totalArg, file] = process.argv.slice(2);
if ((statement !== 'enqueue' && statement !== 'record') || !file) {
  process.stderr.write('usage: schema-ab.ts <enqueue|record> <size> <events> <B.sql>\n');
  process.exit(2);
}
const size = Number(sizeArg ?? 64);
const total = Number(totalArg ?? 20_000);
const pglite = process.env.PROBE_DB === 'pglite';
/** The status `record` gives every attempt (`STATUS=204`); 200 unless set. */
const status = Number(process.env.STATUS ?? 200);

interface Side {
  probe: ProbeSchema;
  hook: number;
  contentType: number;
  /** The backend's pid on PostgreSQL; the probe's pool is used one statement at a time. */
  backend?: number;
  /** µs: backend CPU on PostgreSQL, wall time on PGlite. */
  spent: number;
}

async function side(sql: string[]): Promise<Side> {
  const probe = await probeSchema();
  try {
    const hook = await addWebhook(probe, 'http://127.0.0.1:9/', { retrySeconds: 60 });
    const { rows } = await probe.db.query<{ id: number }>(
      `select id from content_types where model = 'package'`,
    );
    for (const statement of sql) await probe.db.query(statement);
    const backend = pglite
      ? undefined
      : (await probe.db.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid;
    return { probe, hook, contentType: rows[0]!.id, backend, spent: 0 };
  } catch (error) {
    // a B.sql that fails (a typo, two statements on one line) left its schema or data
    // directory behind
    await probe.drop();
    throw error;
  }
}

const events = (s: Side): NewHookEvent[] =>
  Array.from({ length: size }, (_, i) => {
    const uuid = newEventUuid(Date.now());
    return {
      webhookId: s.hook,
      uuid,
      eventType: 'package.created',
      requestPayload: JSON.stringify({
        event: { type: 'package.created', uuid },
        payload: { pk: i, pad: 'p'.repeat(900) },
      }),
      objectId: i,
      contentTypeId: s.contentType,
      maxAttempts: 5,
    };
  });

/** µs so far: the side's backend CPU on PostgreSQL, this process's clock on PGlite. */
const reading = (s: Side): number =>
  s.backend === undefined ? performance.now() * 1000 : cpuMicros(s.backend);

/** Runs `work` on a side and adds what it cost there. */
async function measured(s: Side, work: () => Promise<unknown>): Promise<void> {
  const before = reading(s);
  await work();
  s.spent += reading(s) - before;
}

async function recordOn(s: Side): Promise<void> {
  await enqueueCommitted(s.probe.db, events(s), isoMicro(Date.now()));
  const { rows } = await s.probe.db.query<{ id: string }>(
    'select hook_event_id as id from hook_event_queue order by hook_event_id limit $1',
    [size],
  );
  const at = isoMicro(Date.now());
  const outcomes = rows.map((r): AttemptOutcome => ({
    id: Number(r.id),
    at,
    status,
    content: 'ok',
    delivered: isDeliveredStatus(status),
    next: { kind: 'done' },
    durationMs: 1,
    error: null,
    worker: 'schema-ab',
    deactivate: false,
  }));
  await measured(s, () => recordAttempts(s.probe.db, 'schema-ab', outcomes));
}

const sides: Side[] = [];
try {
  sides.push(await side([]));
  sides.push(await side(splitStatements(readFileSync(file, 'utf8'))));
  // whole statements: `total` rounded up to a multiple of `size`
  const rounds = Math.ceil(total / size);
  for (let round = 0; round < rounds; round++) {
    for (const s of round % 2 === 0 ? sides : [...sides].reverse()) {
      if (statement === 'enqueue') {
        const batch = events(s);
        await measured(s, () => enqueueCommitted(s.probe.db, batch, isoMicro(Date.now())));
      } else {
        await recordOn(s);
      }
    }
  }
  for (const s of sides) {
    // the probe's pool makes a second connection only for statements side by side, and
    // these run one at a time; a CPU reading of the wrong backend would count nothing
    if (s.backend === undefined) continue;
    const { rows } = await s.probe.db.query<{ pid: number }>('select pg_backend_pid() as pid');
    if (rows[0]!.pid !== s.backend) throw new Error('the statements ran on another backend');
  }
  const [a, b] = sides.map((s) => (s.spent / (rounds * size)).toFixed(1));
  process.stdout.write(
    `${statement}, ${size} events a statement, ${pglite ? 'PGlite wall time' : 'PostgreSQL backend CPU'} per event: A ${a} µs, B ${b} µs\n`,
  );
} finally {
  for (const s of sides) await s.probe.drop();
}
