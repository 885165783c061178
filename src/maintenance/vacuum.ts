import type { Db } from '../store/db.js';

/**
 * The tables whose rows the service updates or deletes as a matter of course: a queue
 * row is written, leased and deleted for every event; a hook event is rewritten at each
 * attempt; retention deletes events with their payloads and attempts; maintenance folds
 * the rows of event counts and block summaries written by each publish and delete; rate
 * buckets and worker heartbeats are updated in place many times a minute.
 */
export const CHURNED_TABLES = [
  'hook_event_queue',
  'hook_event_counts',
  'hook_event_blocks',
  'hook_event_key_blocks',
  'hook_events',
  'hook_event_payloads',
  'delivery_attempts',
  'webhook_rate',
  'workers',
] as const;

export type ChurnedTable = (typeof CHURNED_TABLES)[number];

/** A table is vacuumed once its dead rows reach this many ... */
export const DEAD_ROWS_MIN = 1_000;
/** ... and this share of its live rows (autovacuum's own default share). */
export const DEAD_ROWS_SHARE = 0.2;

export interface Vacuumed {
  table: string;
  deadRows: number;
  ms: number;
}

/**
 * VACUUMs those of `tables` (all the churned ones unless given) that carry many dead
 * rows, when nothing else will: PGlite has no autovacuum, and a PostgreSQL server can
 * have it turned off (this project's CI machine does). Without it, every delivered
 * event leaves dead rows behind for good: the files only grow, and scans that cannot
 * mark index entries dead (a bitmap scan) visit them all again each time. Where
 * autovacuum is on, this does nothing and leaves the work to it. `skip_locked` passes
 * over a table another VACUUM is already working on.
 *
 * On PGlite a VACUUM runs in the service's own thread and holds up every other statement
 * while it lasts; the share above keeps the work proportional to the rows written.
 */
export async function vacuumChurned(
  db: Db,
  tables: readonly ChurnedTable[] = CHURNED_TABLES,
): Promise<Vacuumed[]> {
  if (db.kind === 'postgres') {
    const { rows } = await db.query<{ on: boolean }>(
      `select current_setting('autovacuum') = 'on' as on`,
    );
    if (rows[0]?.on) return [];
  } else {
    // PGlite's one session keeps its table counts to itself until it is told to hand them on
    await db.query('select pg_stat_force_next_flush()');
  }
  const { rows } = await db.query<{ table: string; dead: number }>(
    `select relname as table, n_dead_tup::int as dead
     from pg_stat_user_tables
     where schemaname = current_schema() and relname = any($1::text[])
       and n_dead_tup >= $2::int and n_dead_tup >= $3::float8 * n_live_tup
     order by n_dead_tup desc`,
    [tables, DEAD_ROWS_MIN, DEAD_ROWS_SHARE],
  );
  const done: Vacuumed[] = [];
  for (const { table, dead } of rows) {
    // the name comes from CHURNED_TABLES, not from the catalog's text
    const name = tables.find((t) => t === table);
    if (!name) continue;
    const started = performance.now();
    await db.query(`vacuum (skip_locked) ${name}`);
    done.push({ table: name, deadRows: dead, ms: Math.round(performance.now() - started) });
  }
  return done;
}
