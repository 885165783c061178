import { mkdirSync, openSync, readFileSync, rmSync, writeSync, closeSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Logger } from 'pino';
import type { Db } from './db.js';
import type { CheckpointPolicy } from './pglite.js';
import { createPgliteThreadDb } from './pglite-thread.js';

export class DataDirInUseError extends Error {
  override name = 'DataDirInUseError';
}

/**
 * PGlite is one process per data directory: two writers would corrupt it. A lock file
 * holding the owner's pid keeps a second process out (it stops at once with a clear
 * message); a lock left by a process that no longer exists is taken over.
 */
function lockDataDir(dir: string): () => void {
  mkdirSync(dir, { recursive: true });
  const lockPath = resolve(dir, 'oms-hooks.lock');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(lockPath, 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return () => rmSync(lockPath, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const pid = Number.parseInt(readFileSync(lockPath, 'utf8'), 10);
      if (Number.isInteger(pid) && pid !== process.pid && isAlive(pid)) {
        throw new DataDirInUseError(
          `The embedded database in ${dir} is in use by another oms-hooks process (pid ${pid}). ` +
            'PGlite allows one process per data directory: stop that process first, or use the HTTP API ' +
            '(admins manage tokens at /api/v1/oms/tokens/), or run against PostgreSQL with DATABASE_URL.',
        );
      }
      rmSync(lockPath, { force: true });
    }
  }
  throw new DataDirInUseError(`Could not lock ${dir}.`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The service's database: PostgreSQL at `databaseUrl`, else the embedded one in
 * `dataDir`, whose checkpoints (the service's policy unless `checkpoints` is given) run
 * in its thread and report to `logger` when they fail.
 */
export async function openDb(
  options: { databaseUrl: string | undefined; dataDir: string; checkpoints?: CheckpointPolicy },
  logger?: Logger,
): Promise<Db> {
  if (options.databaseUrl) {
    // pg is loaded here, not at start: on PGlite it was 1.6 MB of heap never used
    const { createPgDb } = await import('./pg.js');
    return createPgDb({ connectionString: options.databaseUrl });
  }
  const dir = resolve(options.dataDir);
  const unlock = lockDataDir(dir);
  try {
    const db = await createPgliteThreadDb(dir, {
      checkpoints: options.checkpoints,
      onCheckpoint: (report) => {
        if ('failed' in report)
          logger?.warn(
            { err: report.failed, failures: report.failures },
            'the embedded database could not checkpoint; its WAL on disk grows until it can',
          );
        else
          logger?.info({ failures: report.recovered }, 'the embedded database checkpoints again');
      },
    });
    return {
      ...db,
      async close() {
        try {
          await db.close();
        } finally {
          unlock();
        }
      },
    };
  } catch (error) {
    unlock();
    throw error;
  }
}

/**
 * Server settings for the connections a worker claims and records on. A claim finds the
 * head of each webhook's due events with an ordered scan of (webhook_id, run_at) that
 * stops at its limit, and that marks the entries of delivered (deleted) queue rows dead
 * as it passes them, so the next claim skips them. Planned as a bitmap scan (PostgreSQL
 * chooses one when it expects a few rows per webhook), every claim visits every deleted
 * row left in the index instead, until a VACUUM: on a server without autovacuum, claims
 * that took 1.3 ms took 60 to 95 ms after a few hundred thousand deliveries, and
 * deliveries to 20 webhooks fell from 3,300/s to 1,000/s. Only the worker's own
 * connections are set so: the API's queries keep every plan PostgreSQL has.
 */
export const WORKER_SERVER_OPTIONS = '-c enable_bitmapscan=off -c enable_seqscan=off';

/**
 * The database a worker uses: on PostgreSQL a pool of its own with
 * WORKER_SERVER_OPTIONS; on PGlite, one session for everything, the same database.
 */
export async function openWorkerDb(db: Db, databaseUrl: string | undefined): Promise<Db> {
  if (db.kind !== 'postgres' || !databaseUrl) return db;
  const { createPgDb } = await import('./pg.js');
  return createPgDb({
    connectionString: databaseUrl,
    // as many as the shared pool it replaces: its two LISTEN connections hold one each,
    // beside a claim, two recording statements and leases given back
    max: 10,
    applicationName: 'oms-hooks worker',
    serverOptions: WORKER_SERVER_OPTIONS,
  });
}
