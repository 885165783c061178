import pg from 'pg';
import { formatDatabaseUrl, parseDatabaseUrl } from '../core/database-url.js';
import { OID, keepText, parseInt8, type Db, type Queryable, type QueryResult } from './db.js';

export interface PgOptions {
  connectionString: string;
  /** Every connection uses this schema first (each test file gets its own). */
  schema?: string;
  max?: number;
  applicationName?: string;
  /** How long a LISTEN connection that was lost waits before each reconnect attempt. */
  reconnectMs?: number;
  /** More server settings for every connection (`-c name=value ...`), after ours. */
  serverOptions?: string;
}

/** Connections that fail or hang while the server is away fail fast, as 503s upstream. */
const CONNECT_TIMEOUT_MS = 5_000;

const ignore = () => {};

const typeParsers = {
  getTypeParser(oid: number, format?: string): (value: string) => unknown {
    if (oid === OID.int8) return parseInt8;
    if (oid === OID.timestamptz || oid === OID.timestamp) return keepText;
    return pg.types.getTypeParser(oid, format as 'text');
  },
};

const wrap = (client: pg.Pool | pg.PoolClient): Queryable => ({
  async query<R>(sql: string, params?: readonly unknown[], name?: string): Promise<QueryResult<R>> {
    const values = params as unknown[] | undefined;
    const result = await (name
      ? client.query({ name, text: sql, values })
      : client.query(sql, values));
    return { rows: result.rows as R[], rowCount: result.rowCount ?? 0 };
  },
});

/**
 * No JIT. PostgreSQL compiles a plan with LLVM whenever its *estimated* cost passes
 * jit_above_cost, and a claim over a queue of a million rows is estimated that high
 * though it reads a few hundred index entries: each claim spent ~60 ms compiling for
 * ~1 ms of work, and a million-event backlog drained at 1,400 events/s instead of
 * 5,000. Every statement this service runs is short, so compiling never pays off.
 */
const NO_JIT = '-c jit=off';

/**
 * VACUUM at autovacuum's pace. Where a server runs without autovacuum, maintenance
 * vacuums the churned tables itself (vacuum.ts), and PostgreSQL runs a VACUUM sent by a
 * session at full speed, where autovacuum's sleeps 2 ms after each 200 units of work
 * (`autovacuum_vacuum_cost_delay`, `vacuum_cost_limit`). At full speed, the VACUUM of
 * `hook_events` a minute into publishing 2,000 events/s took 611 and 932 ms, and the
 * publishes due in the 300-400 ms it began in were the slowest of their run, up to 84
 * and 163 ms (probes of 2026-12-06; the README's How it is built has the rest). The
 * setting applies to VACUUM and ANALYZE alone, which only maintenance sends.
 */
const PACED_VACUUM = '-c vacuum_cost_delay=2';

const SERVER_OPTIONS = `${NO_JIT} ${PACED_VACUUM}`;

/**
 * The server options each connection starts with: ours, then the schema's, then any
 * the URL's `options` gives (the last setting of a name wins, so a URL can turn JIT back
 * on). pg lets the URL's `options` replace the pool's, so they are joined here.
 */
function startupOptions(
  connectionString: string,
  schema: string | undefined,
  extra: string | undefined,
) {
  const ours = [SERVER_OPTIONS, schema && `-c search_path=${schema}`, extra]
    .filter(Boolean)
    .join(' ');
  const parsed = parseDatabaseUrl(connectionString);
  const given = parsed?.url.searchParams.get('options');
  if (!parsed || given == null) return { connectionString, options: ours };
  parsed.url.searchParams.delete('options');
  return { connectionString: formatDatabaseUrl(parsed), options: `${ours} ${given}` };
}

export function createPgDb(options: PgOptions): Db {
  const pool = new pg.Pool({
    ...startupOptions(options.connectionString, options.schema, options.serverOptions),
    max: options.max ?? 10,
    application_name: options.applicationName ?? 'oms-hooks',
    types: typeParsers,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
  });
  // An idle client losing its connection must not crash the process; the pool replaces it.
  pool.on('error', ignore);
  const reconnectMs = options.reconnectMs ?? 1_000;
  const pooled = wrap(pool);

  return {
    kind: 'postgres',
    query: pooled.query,
    async exec(sql) {
      await pool.query(sql);
    },
    async transaction(fn) {
      const client = await pool.connect();
      // The pool stops listening for errors on a client it lends out; a server going away
      // between two statements of this transaction must fail them, not the process.
      client.on('error', ignore);
      let broken: Error | undefined;
      try {
        await client.query('BEGIN');
        const result = await fn(wrap(client));
        await client.query('COMMIT');
        return result;
      } catch (error) {
        await client.query('ROLLBACK').catch((rollbackError: Error) => {
          broken = rollbackError;
        });
        throw error;
      } finally {
        client.off('error', ignore);
        // A client that could not even roll back is discarded, not reused.
        client.release(broken);
      }
    },
    /**
     * One pooled connection per subscription. When the server goes away the connection is
     * dropped and re-established every `reconnectMs` until it is back; notifications sent
     * meanwhile are lost, so a reconnect calls `onMessage('')` once to make up for them.
     */
    async listen(channel, onMessage) {
      const name = `"${channel.replaceAll('"', '')}"`;
      let client: pg.PoolClient | undefined;
      let closed = false;
      let retry: NodeJS.Timeout | undefined;
      const handler = (msg: pg.Notification) => {
        if (msg.channel === channel) onMessage(msg.payload ?? '');
      };
      // Bound to one connection: a late error from a dropped one never touches its successor.
      const drop = (gone: pg.PoolClient, error?: Error) => {
        if (client !== gone) return;
        client = undefined;
        gone.off('notification', handler);
        gone.release(error ?? new Error('LISTEN connection ended'));
        if (!closed) retry = setTimeout(reconnect, reconnectMs);
      };
      const connect = async () => {
        const fresh = await pool.connect();
        // Stays attached after a drop: the dying connection may still emit errors.
        fresh.on('error', (error: Error) => drop(fresh, error));
        try {
          await fresh.query(`LISTEN ${name}`);
        } catch (error) {
          fresh.release(error as Error);
          throw error;
        }
        fresh.on('notification', handler);
        fresh.on('end', () => drop(fresh));
        client = fresh;
      };
      const reconnect = () => {
        retry = undefined;
        connect().then(
          () => {
            if (closed) return void unlisten();
            onMessage('');
          },
          () => {
            if (!closed) retry = setTimeout(reconnect, reconnectMs);
          },
        );
      };
      const unlisten = async () => {
        const current = client;
        if (!current) return;
        client = undefined;
        current.off('notification', handler);
        await current.query(`UNLISTEN ${name}`).catch(ignore);
        current.release();
      };
      await connect();
      return async () => {
        closed = true;
        clearTimeout(retry);
        await unlisten();
      };
    },
    async close() {
      await pool.end();
    },
  };
}
