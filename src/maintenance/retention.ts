import type { Db } from '../store/db.js';
import { withMaintenanceLock } from './lock.js';

export interface RetentionOptions {
  /** Events created before this instant (ISO) are purged. */
  before: string;
  batchSize: number;
  /** Rest between batches, so the purge never holds the table for long. */
  pauseMs: number;
  /** Checked between batches: a stopping process ends the purge early. */
  keepGoing: () => boolean;
}

/**
 * Purges old hook events (their queue rows and attempt records go with them, through a
 * trigger once per statement) in small batches, each its own short transaction. Rows a
 * delivery is writing right now are skipped, not waited for; the next run takes them.
 */
export async function purgeOldEvents(db: Db, o: RetentionOptions): Promise<number> {
  let purged = 0;
  while (o.keepGoing()) {
    const deleted = await withMaintenanceLock(db, async (tx) => {
      const { rowCount } = await tx.query(
        `delete from hook_events where id in (
           select id from hook_events where created_date < $1::timestamptz
           order by created_date limit $2
           for update skip locked
         )`,
        [o.before, o.batchSize],
      );
      return rowCount;
    });
    if (deleted === undefined) break; // another maintenance process is at work
    purged += deleted;
    if (deleted < o.batchSize) break;
    await new Promise((resolve) => setTimeout(resolve, o.pauseMs));
  }
  return purged;
}
