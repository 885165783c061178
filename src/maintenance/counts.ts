import type { Db } from '../store/db.js';
import { withMaintenanceLock } from './lock.js';

/**
 * Folds the rows each statement added to hook_event_counts (migration 018) into one row
 * per webhook, event type and content type, with the lowest and highest id of their
 * events (migration 019), and drops the keys that sum to nothing (a deleted webhook's).
 * A count sums the rows of its keys, so between two folds it reads one row more for
 * each publish or delete statement written meanwhile: run every heartbeat, a heartbeat's
 * worth. The rows are deleted and their sums inserted in one statement; rows that
 * transactions still open add later are not seen by it and stay for the next fold.
 * The summaries of the events by block of ids (migration 022) are folded the same way,
 * one row per block, in the same transaction. Returns the rows folded, of both (0 when
 * another maintenance process holds the lock, or there was nothing to fold).
 */
export async function foldEventCounts(db: Db): Promise<number> {
  const folded = await withMaintenanceLock(db, async (tx) => {
    const { rows } = await tx.query<{ folded: number }>(
      `with keys as (
         select webhook_id, event_type, content_type_id from hook_event_counts
         group by webhook_id, event_type, content_type_id having count(*) > 1
       ), gone as (
         delete from hook_event_counts c using keys k
         where c.webhook_id = k.webhook_id and c.event_type = k.event_type
           and c.content_type_id is not distinct from k.content_type_id
         returning c.webhook_id, c.event_type, c.content_type_id, c.n, c.min_id, c.max_id
       ), summed as (
         insert into hook_event_counts (webhook_id, event_type, content_type_id, n, min_id, max_id)
         select webhook_id, event_type, content_type_id, sum(n), min(min_id), max(max_id)
         from gone group by webhook_id, event_type, content_type_id having sum(n) <> 0
       )
       select count(*)::int as folded from gone`,
    );
    const { rows: blocks } = await tx.query<{ folded: number }>(
      `with keys as (
         select block from hook_event_blocks group by block having count(*) > 1
       ), gone as (
         delete from hook_event_blocks b using keys k where b.block = k.block
         returning b.block, b.n, b.oldest, b.newest
       ), summed as (
         insert into hook_event_blocks (block, n, oldest, newest)
         select block, sum(n), min(oldest), max(newest)
         from gone group by block having sum(n) <> 0
       )
       select count(*)::int as folded from gone`,
    );
    return rows[0]!.folded + blocks[0]!.folded;
  });
  return folded ?? 0;
}
