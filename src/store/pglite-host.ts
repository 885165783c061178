/**
 * The thread that runs the embedded database (see pglite-thread.ts): it opens PGlite with
 * the usual adapter and answers the requests of the main thread one message at a time.
 */
import { setFlagsFromString } from 'node:v8';
import { parentPort, workerData } from 'node:worker_threads';
import type { Queryable } from './db.js';
import { createPgliteDb, type CheckpointPolicy } from './pglite.js';
import type { HostReply, HostRequest, ThreadCheckpointReport } from './pglite-thread.js';

const port = parentPort!;
// no `checkpoints`: the service's own policy (createPgliteDb's default)
const { dataDir, checkpoints } = workerData as {
  dataDir?: string;
  checkpoints?: CheckpointPolicy | false;
};
/**
 * The service's database (one on disk) is compiled by V8's optimizing compiler alone.
 * By default V8 first compiles all of PGlite's WebAssembly with its baseline compiler,
 * then again the functions that run often, and keeps both: a service on a new data
 * directory held 249-263 MB a second after it answered against 301-338 MB
 * (bench/run.ts's measure, two starts each), and in two processes enqueueing side by
 * side the database used 1-3% less CPU per event (three pairs). The price is the
 * compile at every start: the service answered 1.3-2.0 s later (3.0-3.8 s against
 * 1.7-1.8 s on an existing data directory). A database in memory (tests, tools) is
 * opened often and lives briefly, and keeps V8's default. The flag is process-wide, and
 * this thread is where the process compiles its one large WebAssembly module.
 */
if (dataDir !== undefined) setFlagsFromString('--no-liftoff');
// the main thread has the logger: a checkpoint that fails goes there (see CheckpointReport)
const db = await createPgliteDb(dataDir, checkpoints, (report) => {
  let checkpoint: ThreadCheckpointReport;
  if ('failed' in report) {
    const { message, name, fields } = errorFields(report.failed);
    checkpoint = { message, name, fields, failures: report.failures };
  } else checkpoint = report;
  port.postMessage({ checkpoint });
});

/** Open transactions by id: each waits for the main thread's commit or rollback. */
interface Open {
  tx: Queryable;
  end: (commit: boolean) => void;
  /** PGlite's own transaction, settled once it has committed or rolled back. */
  done: Promise<void>;
}
const transactions = new Map<number, Open>();
let nextTx = 1;
const ROLLED_BACK = Symbol('rolled back');

/** Opens a transaction and resolves to its id once BEGIN ran, or rejects with its error. */
function begin(): Promise<number> {
  const id = nextTx++;
  return new Promise((began, failed) => {
    const done: Promise<void> = db.transaction(
      (tx) =>
        new Promise<void>((resolve, reject) => {
          const end = (commit: boolean) => (commit ? resolve() : reject(ROLLED_BACK));
          transactions.set(id, { tx, end, done });
          began(id);
        }),
    );
    // a BEGIN that failed never reached the body; once it has, this does nothing
    done.catch(failed);
  });
}

/** Everything an error carries that a caller may read (code, detail, constraint, ...). */
function errorFields(caught: unknown): HostReply & { ok: false } {
  const error = caught instanceof Error ? caught : new Error(String(caught));
  const fields: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(error)) {
    if (v === undefined || typeof v === 'function' || (typeof v === 'object' && v !== null))
      continue;
    fields[k] = v;
  }
  return { id: 0, ok: false, message: error.message, name: error.name, fields };
}

const answer = (id: number, run: () => Promise<unknown>): void => {
  run().then(
    (value) => port.postMessage({ id, ok: true, value } satisfies HostReply),
    (caught: unknown) => port.postMessage({ ...errorFields(caught), id } satisfies HostReply),
  );
};

port.on('message', (m: HostRequest) => {
  switch (m.op) {
    case 'query':
      return answer(m.id, async () => {
        const on = m.tx === undefined ? db : transactions.get(m.tx)?.tx;
        if (!on) throw new Error('the transaction has ended');
        return on.query(m.sql, m.params, m.name);
      });
    case 'exec':
      return answer(m.id, () => db.exec(m.sql));
    case 'begin':
      return answer(m.id, begin);
    case 'end':
      return answer(m.id, async () => {
        const open = transactions.get(m.tx);
        if (!open) return;
        transactions.delete(m.tx);
        open.end(m.commit);
        await open.done.catch((caught: unknown) => {
          if (caught !== ROLLED_BACK) throw caught;
        });
      });
    case 'listen':
      return answer(m.id, async () => {
        const stop = await db.listen(m.channel, (payload) =>
          port.postMessage({ notify: m.id, payload }),
        );
        listeners.set(m.id, stop);
      });
    case 'unlisten':
      return answer(m.id, async () => {
        const stop = listeners.get(m.listener);
        listeners.delete(m.listener);
        await stop?.();
      });
    case 'close':
      return answer(m.id, () => db.close());
  }
});

const listeners = new Map<number, () => Promise<void>>();

port.postMessage({ ready: true });
