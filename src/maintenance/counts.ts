import type { Db, Queryable } from '../store/db.js';
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
  const folded = await withMaintenanceLock(
    db,
    async (tx) =>
      (await fold(tx, 'hook_event_counts', ['webhook_id', 'event_type', 'content_type_id'], {
        min_id: 'min',
        max_id: 'max',
      })) + (await fold(tx, 'hook_event_blocks', ['block'], { oldest: 'min', newest: 'max' })),
  );
  return folded ?? 0;
}

/** Key columns that may be null, compared as equal when both are. */
const NULLABLE: ReadonlySet<string> = new Set(['content_type_id']);

/**
 * One table's rows folded into one per key: `n` summed, each bound its `min` or `max`,
 * and a key whose rows sum to nothing dropped. Returns the rows folded.
 */
async function fold(
  tx: Queryable,
  table: 'hook_event_counts' | 'hook_event_blocks',
  keys: readonly string[],
  bounds: Record<string, 'min' | 'max'>,
): Promise<number> {
  const key = keys.join(', ');
  const columns = [...keys, 'n', ...Object.keys(bounds)];
  const same = keys
    .map((k) => `c.${k} ${NULLABLE.has(k) ? 'is not distinct from' : '='} k.${k}`)
    .join(' and ');
  const folded = Object.entries(bounds).map(([column, f]) => `${f}(${column})`);
  const { rows } = await tx.query<{ folded: number }>(
    `with keys as (
       select ${key} from ${table} group by ${key} having count(*) > 1
     ), gone as (
       delete from ${table} c using keys k where ${same}
       returning ${columns.map((c) => `c.${c}`).join(', ')}
     ), summed as (
       insert into ${table} (${columns.join(', ')})
       select ${key}, sum(n), ${folded.join(', ')}
       from gone group by ${key} having sum(n) <> 0
     )
     select count(*)::int as folded from gone`,
  );
  return rows[0]!.folded;
}
