/**
 * The one seam between the service and its database. Everything above this file speaks
 * SQL through `query`, `transaction` and `listen`; only the adapters know whether a
 * PostgreSQL server or an embedded PGlite database answers.
 *
 * Adapters return int8 as JS numbers and timestamps as the text PostgreSQL printed, so
 * microseconds survive; SQL that feeds the API formats timestamps with `oms_ts()`.
 */
export type Row = Record<string, unknown>;

/** The largest value of an `integer` column: the ids of webhooks, users, tokens, types. */
export const INT4_MAX = 2_147_483_647;

/** Fits an `integer` column; a value outside it matches no row (instead of a SQL error). */
export const isInt4 = (v: number): boolean =>
  Number.isInteger(v) && v >= -INT4_MAX - 1 && v <= INT4_MAX;

export interface QueryResult<R> {
  rows: R[];
  rowCount: number;
}

export interface Queryable {
  /**
   * `name` makes the statement a prepared one on PostgreSQL: parsed once per connection,
   * and planned once for all when PostgreSQL finds after a few runs that a generic plan
   * costs no more than planning for each run's values. For the few statements that run
   * hundreds of times a second; a name always goes with the same SQL. PGlite, one
   * session, PREPAREs it once and runs it with EXECUTE.
   */
  query<R = Row>(sql: string, params?: readonly unknown[], name?: string): Promise<QueryResult<R>>;
}

export interface Db extends Queryable {
  readonly kind: 'postgres' | 'pglite';
  /** Runs a script of several statements without parameters (migrations). */
  exec(sql: string): Promise<void>;
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  /** Subscribes to NOTIFY on a channel; resolves to an unsubscribe function. */
  listen(channel: string, onMessage: (payload: string) => void): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

/** OIDs whose text form we keep as-is or turn into numbers, identically in both adapters. */
export const OID = { int8: 20, timestamp: 1114, timestamptz: 1184 } as const;

/** int8 values we use (ids, counts) stay far below 2**53. */
export const parseInt8 = (value: string): number => Number(value);
export const keepText = (value: string): string => value;
