import { PGlite } from '@electric-sql/pglite';
import { OID, keepText, parseInt8, type Db, type Queryable, type QueryResult } from './db.js';

/** Opens an embedded database: in memory when `dataDir` is undefined. */
export async function createPgliteDb(dataDir?: string): Promise<Db> {
  const lite = await PGlite.create(dataDir, {
    parsers: {
      [OID.int8]: parseInt8,
      [OID.timestamptz]: keepText,
      [OID.timestamp]: keepText,
    },
  });

  const wrap = (target: Pick<PGlite, 'query'>): Queryable => ({
    async query<R>(sql: string, params?: readonly unknown[]): Promise<QueryResult<R>> {
      const result = await target.query<R>(sql, params as unknown[] | undefined);
      return { rows: result.rows, rowCount: result.affectedRows ?? result.rows.length };
    },
  });
  const direct = wrap(lite);

  return {
    kind: 'pglite',
    query: direct.query,
    async exec(sql) {
      await lite.exec(sql);
    },
    transaction(fn) {
      return lite.transaction((tx) => fn(wrap(tx)));
    },
    async listen(channel, onMessage) {
      const unsubscribe = await lite.listen(channel, onMessage);
      return async () => {
        await unsubscribe();
      };
    },
    async close() {
      if (!lite.closed) await lite.close();
    },
  };
}
