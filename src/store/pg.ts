import pg from 'pg';
import { OID, keepText, parseInt8, type Db, type Queryable, type QueryResult } from './db.js';

export interface PgOptions {
  connectionString: string;
  /** Every connection uses this schema first (each test file gets its own). */
  schema?: string;
  max?: number;
  applicationName?: string;
}

const typeParsers = {
  getTypeParser(oid: number, format?: string): (value: string) => unknown {
    if (oid === OID.int8) return parseInt8;
    if (oid === OID.timestamptz || oid === OID.timestamp) return keepText;
    return pg.types.getTypeParser(oid, format as 'text');
  },
};

const wrap = (client: pg.Pool | pg.PoolClient): Queryable => ({
  async query<R>(sql: string, params?: readonly unknown[]): Promise<QueryResult<R>> {
    const result = await client.query(sql, params as unknown[] | undefined);
    return { rows: result.rows as R[], rowCount: result.rowCount ?? 0 };
  },
});

export function createPgDb(options: PgOptions): Db {
  const pool = new pg.Pool({
    connectionString: options.connectionString,
    max: options.max ?? 10,
    application_name: options.applicationName ?? 'oms-hooks',
    types: typeParsers,
    ...(options.schema ? { options: `-c search_path=${options.schema}` } : {}),
  });
  // An idle client losing its connection must not crash the process; the pool replaces it.
  pool.on('error', () => {});
  const pooled = wrap(pool);

  return {
    kind: 'postgres',
    query: pooled.query,
    async exec(sql) {
      await pool.query(sql);
    },
    async transaction(fn) {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        const result = await fn(wrap(client));
        await client.query('COMMIT');
        return result;
      } catch (error) {
        await client.query('ROLLBACK').catch(() => {});
        throw error;
      } finally {
        client.release();
      }
    },
    async listen(channel, onMessage) {
      const client = await pool.connect();
      client.on('error', () => {});
      const handler = (msg: pg.Notification) => {
        if (msg.channel === channel) onMessage(msg.payload ?? '');
      };
      client.on('notification', handler);
      await client.query(`LISTEN "${channel.replaceAll('"', '')}"`);
      return async () => {
        client.off('notification', handler);
        await client.query(`UNLISTEN "${channel.replaceAll('"', '')}"`).catch(() => {});
        client.release();
      };
    },
    async close() {
      await pool.end();
    },
  };
}
