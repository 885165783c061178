import fs, { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mock, type Mock } from 'node:test';
import type { Db } from '../../src/store/db.js';
import { createPgliteDb } from '../../src/store/pglite.js';

/** A new, empty data directory for `use`, removed after it. */
export async function withDataDir(use: (dir: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'oms-hooks-data-'));
  try {
    await use(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The embedded database on `dir` (in memory when undefined) for `use`, closed after it. */
export async function withPglite(
  dir: string | undefined,
  use: (db: Db) => Promise<void>,
): Promise<void> {
  const db = await createPgliteDb(dir);
  try {
    await use(db);
  } finally {
    await db.close();
  }
}

/**
 * The host's fdatasync, spied on during `use`: each call still flushes, and is counted.
 * PGlite's commits on a data directory reach the disk through it (src/store/pglite.ts).
 */
export async function watchingHostFlushes(
  use: (flushes: Mock<typeof fs.fdatasyncSync>) => Promise<void>,
): Promise<void> {
  const flushes = mock.method(fs, 'fdatasyncSync');
  try {
    await use(flushes);
  } finally {
    flushes.mock.restore();
  }
}

/** Checkpoints due at every tick, a tick every 20 ms (the service's own ask every 5 s). */
export const CHECKPOINT_EVERY_TICK = Object.freeze({
  walBytes: 0,
  maxAgeMs: 0,
  minWalBytes: 0,
  everyMs: 20,
});

/** What PostgreSQL answers a CHECKPOINT that `denyCheckpoints` made fail. */
export const CHECKPOINT_DENIED = 'permission denied to execute CHECKPOINT command';

/**
 * Makes every CHECKPOINT fail for real: the session's role may not run one. PGlite is
 * one session, so the checkpoints of its timer run under that role too (`reset role`
 * ends it).
 */
export const denyCheckpoints = (db: Db) =>
  db.exec('create role oms_no_checkpoint; set role oms_no_checkpoint');
