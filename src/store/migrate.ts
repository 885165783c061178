import { readdir, readFile } from 'node:fs/promises';
import type { Db } from './db.js';

/** Migrations live beside the package root, so src/ and dist/ both find them. */
export const MIGRATIONS_DIR = new URL('../../migrations/', import.meta.url);

/** A fixed advisory-lock key: concurrent starters wait instead of racing the same script. */
const LOCK_KEY = 7_246_391_0;

export interface MigrationResult {
  applied: string[];
}

/**
 * Applies the pending forward-only migrations (`001_name.sql`, ...) in one transaction
 * under an advisory lock: all of them land or none does. A failure throws; the caller
 * exits non-zero.
 */
export async function migrate(db: Db): Promise<MigrationResult> {
  const files = (await readdir(MIGRATIONS_DIR)).filter((f) => /^\d+_.+\.sql$/.test(f)).sort();
  const applied: string[] = [];
  await db.exec(`
    create table if not exists oms_migrations (
      id integer primary key,
      name text not null,
      applied_at timestamptz not null default now()
    )`);
  await db.transaction(async (tx) => {
    // Transaction-scoped lock: released at commit, so no connection is left holding it.
    await tx.query('select pg_advisory_xact_lock($1)', [LOCK_KEY]);
    const done = new Set(
      (await tx.query<{ id: number }>('select id from oms_migrations')).rows.map((r) => r.id),
    );
    for (const file of files) {
      const id = Number.parseInt(file, 10);
      if (done.has(id)) continue;
      const sql = await readFile(new URL(file, MIGRATIONS_DIR), 'utf8');
      for (const statement of splitStatements(sql)) await tx.query(statement);
      await tx.query('insert into oms_migrations (id, name) values ($1, $2)', [id, file]);
      applied.push(file);
    }
  });
  return { applied };
}

/**
 * Splits a migration script into statements on `;` at line ends, keeping `$$` bodies
 * whole, so each can run through the extended protocol inside one transaction.
 */
export function splitStatements(sql: string): string[] {
  const statements: string[] = [];
  let current = '';
  let inDollar = false;
  for (const line of sql.split('\n')) {
    if (line.trimStart().startsWith('--') && !inDollar) continue;
    current += line + '\n';
    const dollars = line.match(/\$\$/g)?.length ?? 0;
    if (dollars % 2 === 1) inDollar = !inDollar;
    if (!inDollar && line.trimEnd().endsWith(';')) {
      statements.push(current.trim());
      current = '';
    }
  }
  if (current.trim()) statements.push(current.trim());
  return statements;
}
