import type { Db, Queryable } from '../store/db.js';
import { withMaintenanceLock } from './lock.js';

/**
 * Folds the rows each statement added to hook_event_counts (migration 018) into one row
 * per webhook, event type and content type, with the lowest and highest id of their
 * events (migration 019), and drops the keys that sum to nothing (a deleted webhook's).
 * A count sums the rows of its keys, so between two folds it reads one row more for
 * each publish or delete statement written meanwhile: run every heartbeat, a heartbeat's
 * worth. The summaries of the events by block of ids (migration 022) are folded the
 * same way, one row per block, and those by key and block (migration 023), one row per
 * key and block. Returns the rows folded, of all three (0 when another maintenance
 * process holds the lock, or there was nothing to fold).
 */
export async function foldEventCounts(db: Db): Promise<number> {
  const folded = await withMaintenanceLock(db, async (tx) => foldAll(tx));
  return folded ?? 0;
}

/** The key of a row of totals: a webhook, an event type and a content type. */
const KEY = ['webhook_id', 'event_type', 'content_type_id'];

/**
 * All three folds in one statement, so that they see the same rows. A key and block with
 * more than one row had a statement write it since the last fold, and that statement
 * wrote a row of the key's totals and one of the block's summary too: so the keys and
 * blocks the other two folds find hold every key and block to fold, and the fold of
 * hook_event_key_blocks reads the rows of their webhooks and blocks alone, off its index
 * by webhook and block, rather than its whole table (a row per 4,096 events of each
 * webhook).
 */
async function foldAll(tx: Queryable): Promise<number> {
  const steps = [
    fold('c', 'hook_event_counts', KEY, { min_id: 'min', max_id: 'max' }),
    fold('b', 'hook_event_blocks', ['block'], { oldest: 'min', newest: 'max' }),
    fold(
      'k',
      'hook_event_key_blocks',
      [...KEY, 'block'],
      {},
      {
        // one lookup of the index per webhook and block (`offset 0` keeps PostgreSQL
        // from making it a join): joined, the whole table was read for a few rows of it
        rows: `(select distinct w.webhook_id, b.block from c_keys w cross join b_keys b) p
        cross join lateral (select * from hook_event_key_blocks c
          where c.webhook_id = p.webhook_id and c.block = p.block offset 0) c`,
        among:
          'c.webhook_id in (select webhook_id from c_keys) and c.block in (select block from b_keys)',
      },
    ),
  ];
  const { rows } = await tx.query<{ folded: number }>(
    `with ${steps.join(', ')}
     select ((select count(*) from c_gone) + (select count(*) from b_gone)
             + (select count(*) from k_gone))::int as folded`,
  );
  return rows[0]!.folded;
}

/** Key columns that may be null, compared as equal when both are. */
const NULLABLE: ReadonlySet<string> = new Set(['content_type_id']);

/**
 * The steps, named after `name`, that fold one table's rows into one per key: `n`
 * summed, each bound its `min` or `max`, and a key whose rows sum to nothing dropped.
 * `${name}_keys` are the keys folded, `${name}_gone` the rows deleted. `only`, when
 * given, keeps the fold to some of the table's rows (named `c`): `rows` reads them, and
 * `among` is their condition.
 */
function fold(
  name: string,
  table: 'hook_event_counts' | 'hook_event_blocks' | 'hook_event_key_blocks',
  keys: readonly string[],
  bounds: Record<string, 'min' | 'max'>,
  only: { rows: string; among: string } = { rows: `${table} c`, among: 'true' },
): string {
  const key = keys.join(', ');
  const columns = [...keys, 'n', ...Object.keys(bounds)];
  const same = keys
    .map((k) => `c.${k} ${NULLABLE.has(k) ? 'is not distinct from' : '='} k.${k}`)
    .join(' and ');
  const summed = [
    ...keys,
    'sum(n)',
    ...Object.entries(bounds).map(([column, f]) => `${f}(${column})`),
  ];
  return `${name}_keys as (
       select ${keys.map((k) => `c.${k}`).join(', ')} from ${only.rows}
       group by ${keys.map((k) => `c.${k}`).join(', ')} having count(*) > 1
     ), ${name}_gone as (
       delete from ${table} c using ${name}_keys k where ${same} and ${only.among}
       returning ${columns.map((c) => `c.${c}`).join(', ')}
     ), ${name}_summed as (
       insert into ${table} (${columns.join(', ')})
       select ${summed.join(', ')} from ${name}_gone group by ${key} having sum(n) <> 0
     )`;
}
