import type { Db, Queryable } from '../store/db.js';

/** The advisory-lock key every maintenance process competes for. */
const MAINTENANCE_LOCK = 7_246_391_3;

/**
 * Runs `fn` in a transaction holding the maintenance lock, or skips it (undefined) when
 * another maintenance process holds it: any number of maintenance processes may run,
 * one works at a time. The lock is transaction-scoped, so a connection that dies while
 * holding it can never leave it taken, and a long retention run, done batch by batch,
 * lets deliveries and other maintenance work in between.
 */
export async function withMaintenanceLock<T>(
  db: Db,
  fn: (tx: Queryable) => Promise<T>,
): Promise<T | undefined> {
  return db.transaction(async (tx) => {
    const { rows } = await tx.query<{ locked: boolean }>(
      'select pg_try_advisory_xact_lock($1) as locked',
      [MAINTENANCE_LOCK],
    );
    return rows[0]?.locked ? fn(tx) : undefined;
  });
}
