import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { Db, Queryable } from '../../src/store/db.js';
import { migrate } from '../../src/store/migrate.js';
import { createPgDb } from '../../src/store/pg.js';
import { createPgliteDb } from '../../src/store/pglite.js';

/** True when the suite runs against PostgreSQL (DATABASE_URL set), else PGlite. */
export const onPostgres = Boolean(process.env.DATABASE_URL);

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
  const schema = `t_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  await admin.query(`create schema ${schema}`);
  await admin.end();
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
 * parameters of each: under its name when it is a named statement, else under
 * `UNNAMED` (the last unnamed one sent).
 */
export function noting(inner: Db, seen: Map<string, Sent>): Db {
  const query: Queryable['query'] = (sql, params, name) => {
    seen.set(name ?? UNNAMED, { sql, params: params ?? [] });
    return inner.query(sql, params, name);
  };
  return { ...inner, query } as Db;
}

export const UNNAMED = '';

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
