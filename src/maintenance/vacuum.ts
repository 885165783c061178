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

/**
 * Tables vacuumed after inserts alone, as autovacuum does every table. Rows only ever
 * inserted leave no dead rows, so the rule of dead rows below never vacuums them, and
 * their pages are never marked all-visible: a read of an index alone (a count of a date
 * range, a page of ids off `hook_events_created_idx`) then visits the table for each
 * row too. Only `hook_events` is read that way. The payloads and the attempts are always
 * read from the table, and on PGlite such a VACUUM holds the database: after 200,000
 * events were added to 1,000,000, one of the payloads took 235 ms and one of the events
 * 114 (a scratch script, 2026-12-06). What freezing their rows needs is freezeAged's.
 */
const INSERT_VACUUMED: readonly ChurnedTable[] = ['hook_events'];

/** A table is vacuumed once its dead rows, or the rows inserted since its last VACUUM, reach this many ... */
export const DEAD_ROWS_MIN = 1_000;
/** ... and this share of its live rows (autovacuum's own default share). */
export const DEAD_ROWS_SHARE = 0.2;

export type Vacuumed =
  | {
      table: string;
      why: 'dead rows' | 'inserted rows';
      deadRows: number;
      /** Rows inserted since the table's last VACUUM. */
      insertedRows: number;
      ms: number;
    }
  | {
      table: string;
      why: 'transaction age';
      /** How many transactions ago its oldest unfrozen row, or its TOAST table's, was written. */
      xidAge: number;
      /** The same for the multixacts of rows locked by more than one transaction. */
      multixactAge: number;
      ms: number;
    };

/**
 * VACUUMs those of `tables` (all the churned ones unless given) that carry many dead
 * rows, or (`hook_events`) many rows inserted since its last VACUUM, when nothing else
 * will: PGlite has no autovacuum, and a PostgreSQL server can
 * have it turned off (this project's CI machine does). Without it, every delivered
 * event leaves dead rows behind for good: the files only grow, and scans that cannot
 * mark index entries dead (a bitmap scan) visit them all again each time. Where
 * autovacuum is on, this does nothing and leaves the work to it. `skip_locked` passes
 * over a table another VACUUM is already working on.
 *
 * On PGlite a VACUUM runs in the service's own thread and holds up every other statement
 * while it lasts; the share above keeps the work proportional to the rows written. On
 * PostgreSQL it runs at autovacuum's pace (PACED_VACUUM in pg.ts).
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
  const { rows } = await db.query<{
    table: string;
    dead: number;
    inserted: number;
    deadDue: boolean;
    insertedDue: boolean;
  }>(
    `select * from (
       select relname as table, n_dead_tup::int as dead, n_ins_since_vacuum::int as inserted,
              n_dead_tup >= $3::int and n_dead_tup >= $4::float8 * n_live_tup as "deadDue",
              relname = any($2::text[]) and n_ins_since_vacuum >= $3::int
                and n_ins_since_vacuum >= $4::float8 * n_live_tup as "insertedDue"
       from pg_stat_user_tables
       where schemaname = current_schema() and relname = any($1::text[])) t
     where "deadDue" or "insertedDue"
     order by greatest(dead, inserted) desc`,
    [tables, INSERT_VACUUMED, DEAD_ROWS_MIN, DEAD_ROWS_SHARE],
  );
  const done: Vacuumed[] = [];
  for (const { table, dead, inserted, deadDue } of rows) {
    // the name comes from CHURNED_TABLES, not from the catalog's text
    const name = tables.find((t) => t === table);
    if (!name) continue;
    const started = performance.now();
    await db.query(`vacuum (skip_locked) ${name}`);
    done.push({
      table: name,
      why: deadDue ? 'dead rows' : 'inserted rows',
      deadRows: dead,
      insertedRows: inserted,
      ms: Math.round(performance.now() - started),
    });
  }
  return done;
}

/** Overrides of the server's own limits of age, for tests. */
export interface FreezeAges {
  /** Default: the server's `autovacuum_freeze_max_age` (200 million transactions). */
  xid?: number;
  /** Default: the server's `autovacuum_multixact_freeze_max_age` (400 million). */
  multixact?: number;
}

/**
 * On PGlite: VACUUM (FREEZE) of every table of the database, the system catalogs
 * included, whose oldest unfrozen row was written more than `autovacuum_freeze_max_age`
 * transactions ago (200 million by default), as autovacuum would do on a server.
 *
 * Why: PostgreSQL's transaction ids wrap around after about two billion, and a row must
 * be frozen before its id is that old, or it would seem written in the future and drop
 * out of every read. A server sees to it even with autovacuum turned off: it starts an
 * autovacuum worker for a table that old whatever the setting (so on PostgreSQL this
 * does nothing). PGlite starts none, and the VACUUMs above freeze only the churned
 * tables: the catalogs, the users, webhooks and tokens keep their age, and every
 * transaction that writes (a publish's statement, a claim, a record) adds one. Publishing
 * and delivering 2,000 events a second took 0.13 transaction ids per event on
 * PostgreSQL: two billion in about three months. A server in that state first warns,
 * then refuses new transactions until it is vacuumed in single-user mode; PGlite runs in
 * single-user mode, where the refusal does not apply and nothing stops short of it.
 *
 * FREEZE rather than a plain VACUUM: at that age a plain one would freeze only rows older
 * than `vacuum_freeze_min_age` (50 million), and this way each table is done once per
 * `autovacuum_freeze_max_age` transactions. It holds the database's one thread while it
 * runs, as every VACUUM on PGlite does.
 */
export async function freezeAged(db: Db, ages: FreezeAges = {}): Promise<Vacuumed[]> {
  if (db.kind === 'postgres') return [];
  const { rows: due } = await db.query<{ table: string; xidAge: number; multixactAge: number }>(
    `select * from (
       select format('%I.%I', n.nspname, c.relname) as table,
              greatest(age(c.relfrozenxid), coalesce(age(t.relfrozenxid), 0)) as "xidAge",
              greatest(mxid_age(c.relminmxid), coalesce(mxid_age(t.relminmxid), 0)) as "multixactAge"
       from pg_class c
       join pg_namespace n on n.oid = c.relnamespace
       left join pg_class t on t.oid = c.reltoastrelid
       where c.relkind in ('r', 'm') and c.relpersistence <> 't') aged
     where "xidAge" >= coalesce($1::int, current_setting('autovacuum_freeze_max_age')::int)
        or "multixactAge" >=
             coalesce($2::int, current_setting('autovacuum_multixact_freeze_max_age')::int)
     order by "xidAge" desc`,
    [ages.xid ?? null, ages.multixact ?? null],
  );
  const done: Vacuumed[] = [];
  for (const { table, xidAge, multixactAge } of due) {
    const started = performance.now();
    // format('%I.%I') quoted the name
    await db.query(`vacuum (freeze, skip_locked) ${table}`);
    done.push({
      table,
      why: 'transaction age',
      xidAge,
      multixactAge,
      ms: Math.round(performance.now() - started),
    });
  }
  return done;
}
