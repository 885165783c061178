import { mkdirSync, openSync, readFileSync, rmSync, writeSync, closeSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Db } from './db.js';
import { createPgDb } from './pg.js';
import { createPgliteDb } from './pglite.js';

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

export async function openDb(options: {
  databaseUrl: string | undefined;
  dataDir: string;
}): Promise<Db> {
  if (options.databaseUrl) return createPgDb({ connectionString: options.databaseUrl });
  const dir = resolve(options.dataDir);
  const unlock = lockDataDir(dir);
  try {
    const db = await createPgliteDb(dir);
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
