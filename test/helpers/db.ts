import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { Db, Queryable } from '../../src/store/db.js';
import { migrate } from '../../src/store/migrate.js';
import { createPgDb } from '../../src/store/pg.js';
import { createPgliteDb } from '../../src/store/pglite.js';

/** True when the suite runs against PostgreSQL (DATABASE_URL set), else PGlite. */
export const onPostgres = Boolean(process.env.DATABASE_URL);

/** A run's schemas are dropped by a later run once they are this old. */
const STALE_SCHEMA_MS = 60 * 60 * 1000;

/** Who makes scratch schemas: tests, process tests, and the bench's tools. */
export type SchemaPrefix = 't' | 'p' | 'bench' | 'probe' | 'drain';
const SCRATCH_SCHEMA = /^(t|p|bench|probe|drain)_[0-9a-z]+_[0-9a-f]{12}$/;

/**
 * Creates a schema of its own for a test (`t`), a process test (`p`) or a bench tool,
 * named after the second it was made: `t_<seconds, base 36>_<random>`. A test file or a
 * probe killed before its cleanup (by the runner's timeout, or ^C) leaves its schema on
 * the server; each new one first drops those of that naming more than an hour old,
 * which no run still uses.
 */
export async function createTestSchema(url: string, prefix: SchemaPrefix): Promise<string> {
  const now = Date.now();
  const schema = `${prefix}_${Math.floor(now / 1000).toString(36)}_${randomBytes(6).toString('hex')}`;
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const { rows } = await c.query<{ name: string }>(
      `select nspname as name from pg_namespace where nspname ~ $1`,
      [SCRATCH_SCHEMA.source],
    );
    for (const { name } of rows) {
      const madeAt = parseInt(name.split('_')[1]!, 36) * 1000;
      if (now - madeAt < STALE_SCHEMA_MS) continue;
      // another run may be dropping it at the same moment: whoever is second gives way
      await c.query(`drop schema if exists ${name} cascade`).catch(() => undefined);
    }
    await c.query(`create schema ${schema}`);
  } finally {
    await c.end();
  }
  return schema;
}

/**
 * A fresh, migrated database for one test file: an in-memory PGlite, or a schema of its
 * own on PostgreSQL (dropped by `drop`). Nothing depends on test order.
 */
export async function testDb(): Promise<{ db: Db; drop: () => Promise<void> }> {
  const url = process.env.DATABASE_URL;
  if (!url) {
    const db = await createPgliteDb();
    await migrate(db);
    return { db, drop: () => db.close() };
  }
  const schema = await createTestSchema(url, 't');
  const db = createPgDb({ connectionString: url, schema, max: 5 });
  await migrate(db);
  return {
    db,
    drop: async () => {
      await db.close();
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      await c.query(`drop schema ${schema} cascade`);
      await c.end();
    },
  };
}

/** A statement as it was sent: its text and parameters. */
export interface Sent {
  sql: string;
  params: readonly unknown[];
}

/**
 * A Db that runs every statement on `inner` and notes, in `seen`, the text and
 * parameters of each, in its transactions too: under its name when it is a named
 * statement, else under `UNNAMED` (the last unnamed one sent); and each in turn in
 * `all`, when given.
 */
export function noting(inner: Db, seen: Map<string, Sent>, all?: Sent[]): Db {
  const note =
    (on: Queryable): Queryable['query'] =>
    (sql, params, name) => {
      seen.set(name ?? UNNAMED, { sql, params: params ?? [] });
      all?.push({ sql, params: params ?? [] });
      return on.query(sql, params, name);
    };
  return {
    ...inner,
    query: note(inner),
    transaction: (fn) => inner.transaction((tx) => fn({ query: note(tx) })),
  } as Db;
}

export const UNNAMED = '';

interface PlanNode {
  'Relation Name'?: string;
  'Node Type': string;
  'Actual Rows': number;
  'Actual Loops': number;
  'Rows Removed by Filter'?: number;
  Plans?: PlanNode[];
}

/**
 * How many rows of `table` a statement read, run (EXPLAIN ANALYZE) in a transaction
 * that is rolled back, under the given `set local` settings: what its scans returned
 * and what their filters removed, in every loop.
 */
export async function rowsRead(
  db: Db,
  { sql, params }: Sent,
  table: string,
  settings: string[] = [],
): Promise<number> {
  let read = 0;
  await db
    .transaction(async (tx) => {
      for (const s of settings) await tx.query(`set local ${s}`);
      const { rows } = await tx.query<{ 'QUERY PLAN': unknown }>(
        `explain (analyze, format json) ${sql}`,
        [...params],
      );
      const raw = rows[0]!['QUERY PLAN'];
      const plan = (typeof raw === 'string' ? JSON.parse(raw) : raw) as [{ Plan: PlanNode }];
      const walk = (node: PlanNode) => {
        if (node['Relation Name'] === table && node['Node Type'] !== 'Bitmap Index Scan')
          read +=
            (node['Actual Rows'] + (node['Rows Removed by Filter'] ?? 0)) * node['Actual Loops'];
        for (const child of node.Plans ?? []) walk(child);
      };
      walk(plan[0].Plan);
      throw new RolledBack();
    })
    .catch((error: unknown) => {
      if (!(error instanceof RolledBack)) throw error;
    });
  return read;
}

class RolledBack extends Error {}

/**
 * VACUUM (and ANALYZE, unless `analyze` is false) of `table`, again until every page
 * of it is marked all-visible, as a server's table settles once no transaction older
 * than its rows is open. On PostgreSQL the test files run side by side in one database,
 * and a transaction open in another file keeps VACUUM from marking the pages this one
 * just wrote: index-only reads then cost PostgreSQL as much as reading the table, and
 * a test of which index a read takes saw another plan (a psql session holding a
 * transaction open made two of them fail). Fails after `waitMs`.
 */
export async function vacuumed(
  db: Queryable,
  table: string,
  { analyze = true, waitMs = 60_000 } = {},
): Promise<void> {
  const until = Date.now() + waitMs;
  for (;;) {
    await db.query(`vacuum ${analyze ? 'analyze ' : ''}${table}`);
    const { rows } = await db.query<{ visible: boolean }>(
      `select relallvisible >= relpages as visible from pg_class where oid = $1::regclass`,
      [table],
    );
    if (rows[0]!.visible) return;
    if (Date.now() > until)
      throw new Error(
        `${table}: not all visible after ${waitMs} ms of VACUUM; a transaction open?`,
      );
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * Runs `first` in a transaction left open, then `second` beside it, and commits `first`
 * once `second` waits for a lock (a statement that starts with `waitsAs`), or after 2 s.
 * Says whether it waited, and what `second` threw (undefined when it succeeded).
 * PostgreSQL only: PGlite runs one statement at a time.
 */
export async function behindOpenTransaction(
  db: Db,
  first: (tx: Queryable) => Promise<unknown>,
  second: () => Promise<unknown>,
  waitsAs: string,
): Promise<{ waited: boolean; error: unknown }> {
  let commit!: () => void;
  const release = new Promise<void>((resolve) => (commit = resolve));
  let ran!: () => void;
  const started = new Promise<void>((resolve) => (ran = resolve));
  const held = db.transaction(async (tx) => {
    await first(tx);
    ran();
    await release;
  });
  await Promise.race([started, held]);
  const outcome = second().then(
    () => undefined,
    (error: unknown) => error,
  );
  let waited = false;
  try {
    for (let i = 0; i < 100 && !waited; i++) {
      const { rows } = await db.query<{ n: number }>(
        `select count(*)::int as n from pg_stat_activity
         where wait_event_type = 'Lock' and query like $1 || '%'`,
        [waitsAs],
      );
      waited = rows[0]!.n > 0;
      if (!waited) await new Promise((resolve) => setTimeout(resolve, 20));
    }
  } finally {
    commit();
    await held;
  }
  return { waited, error: await outcome };
}
