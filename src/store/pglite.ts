import fs from 'node:fs';
import { PGlite, parse, type postgresMod } from '@electric-sql/pglite';
import { NodeFS } from '@electric-sql/pglite/nodefs';
import { OID, keepText, parseInt8, type Db, type Queryable, type QueryResult } from './db.js';
import { toError } from '../core/errors.js';
import { frontend, wire, type ParamText } from './pglite-wire.js';

/** A parameter as the text a Bind message carries, null for SQL NULL. */
const paramText = (value: unknown): ParamText =>
  value === null || value === undefined ? null : valueText(value);

/** The text form PostgreSQL reads for a parameter, as the pg client writes it. */
function valueText(value: unknown): string {
  if (Array.isArray(value)) return arrayText(value);
  if (typeof value === 'string') return value;
  if (value instanceof Date) return value.toISOString();
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value as number | boolean | bigint);
}

/** An array literal, every element quoted (a quoted NULL would be the string 'NULL'). */
function arrayText(values: unknown[]): string {
  const elements = values.map((v) => {
    if (v === null || v === undefined) return 'NULL';
    if (Array.isArray(v)) return arrayText(v);
    return `"${valueText(v).replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`;
  });
  return `{${elements.join(',')}}`;
}

/**
 * The planner settings a named statement runs under, the same as a PostgreSQL worker's
 * connections (WORKER_SERVER_OPTIONS in open.ts): its plan is kept for the life of the
 * session, and PGlite never vacuums, so a plan made while the queue was small must not
 * be a bitmap or sequential scan that later visits every dead queue row. The named
 * statements reach a bounded set of rows by key, where an index path is right at any
 * size; every other statement keeps the planner's full choice.
 */
const INDEX_PATHS_ONLY = 'set enable_bitmapscan = off; set enable_seqscan = off';
const RESET_PATHS = 'reset enable_bitmapscan; reset enable_seqscan';

/**
 * PostgreSQL's shared_buffers, down from PGlite's 128MB: the buffer cache lives in the
 * process's own (WebAssembly) memory, where every page it has used stays counted in the
 * service's RSS, and WebAssembly memory is never given back. 32MB measured no slower than
 * 128MB, and 16MB within this machine's noise of 32MB: draining 300,000 events
 * (`PROBE_DB=pglite bench/backlog-probe.ts 300000`, three alternated pairs, with the
 * database thread's smaller young generation too, see pglite-thread.ts) read
 * 9,972-10,530/s against 10,366-10,767/s, means 3% apart, and the service's peak RSS
 * 266-274 MB against 299-348; publishing while delivering (`bench/publish-probe.ts 15
 * all`, two pairs) 5,099 and 5,185/s against 4,605 and 5,312/s. A checkpoint also has
 * at most half as many dirty buffers to write. Passed as a start parameter after
 * PGlite's own, which it keeps; a `postgresqlconf` would replace postgresql.conf and
 * lose its other settings (TimeZone became GMT instead of UTC).
 */
const START_PARAMS = [...PGlite.defaultStartParams, '-c', 'shared_buffers=16MB'];

/**
 * On a data directory, a new WAL segment is not filled with zeros before it is used
 * (`wal_init_zero=off`): PostgreSQL writes one byte at its end instead, and the file
 * system gives it blocks as the WAL is written. Zero-filled, each new segment was 16 MB
 * written and flushed inside the database's only thread while every statement waited:
 * at 2,000 events/s, a publish or record statement took 53-99 ms once every 2.7 s,
 * every 16 MB of WAL (statements over 30 ms timed in the database thread, in
 * `PROBE_DB=pglite bench/latency-probe.ts 20 2000 15`). With the setting none did, but
 * for one stall a run that runs without it had too, 35-38 s after the start: the kernel
 * writing back the database's files (docs/performance.md). New segments are made only
 * until checkpoints recycle old ones (see CHECKPOINTS): after the first, at 563 MB of
 * WAL in that probe, the stalls stopped with either setting. A sparse segment on ext4
 * flushed no slower: 6,000 single-row commits read p50 0.40-0.57 ms against 0.41-0.55
 * (three alternated pairs). PostgreSQL names this setting for copy-on-write file
 * systems; elsewhere its cost is that a segment's space is taken as the WAL fills it, so
 * a full disk shows when a commit writes rather than when the segment is made.
 */
const WAL_NOT_ZEROED = ['-c', 'wal_init_zero=off'];

/**
 * On a data directory, commits that reach the disk. PGlite starts PostgreSQL with fsync
 * off (`-F` among its default start parameters), and the file system a data directory
 * is mounted with, Emscripten's NODEFS, has no fsync of its own, while the fdatasync
 * PostgreSQL calls for its WAL by default returns without calling the file system at
 * all: a commit reached the operating system's page cache, which a killed service keeps
 * and a power cut or a crash of the OS does not. So PostgreSQL runs with fsync on and
 * `wal_sync_method=fsync`, whose calls do reach the file system, and NODEFS is given the
 * fsync it lacks (DurableNodeFS). Measured in one process: 200 single-row commits took
 * 1.15 ms each against 0.19 ms before, and strace counted one host fdatasync per commit.
 * In memory (the tests' database) there is no disk to reach and nothing changes.
 */
const DURABLE_PARAMS = ['-c', 'fsync=on', '-c', 'wal_sync_method=fsync', ...WAL_NOT_ZEROED];

type PostgresMod = postgresMod.PostgresMod;

/** Emscripten's errno values, as the C library inside PGlite reads them. */
const EBADF = 8;
const EIO = 29;

/** An open file or directory of NODEFS: it holds a host descriptor for each. */
interface NodeFsStream {
  nfd?: number;
}

/**
 * NodeFS, with an fsync: the host file's (or directory's) data flushed with fdatasync,
 * which is what PostgreSQL's WAL sync does natively on Linux. It is in place before
 * PostgreSQL starts, so a recovery's checkpoint is flushed too. A stream with no host
 * descriptor answers EBADF, which PostgreSQL ignores for a directory and treats as the
 * failure it is for a file; a failed flush answers EIO, on which PostgreSQL stops rather
 * than count a commit that may not be on disk. NODEFS is internal to PGlite: if a new
 * version moves it, opening the database throws instead of running without durable
 * commits.
 */
class DurableNodeFS extends NodeFS {
  override async init(pg: PGlite, opts: Partial<PostgresMod>) {
    const { emscriptenOpts } = await super.init(pg, opts);
    const giveFsync = (mod: PostgresMod) => {
      const nodefs = (mod as unknown as { NODEFS?: { stream_ops?: object } }).NODEFS;
      const streamOps = nodefs?.stream_ops as
        { fsync?: (stream: NodeFsStream) => number } | undefined;
      if (!streamOps)
        throw new Error("PGlite's NODEFS was not found: its commits could not be made durable");
      streamOps.fsync = (stream) => {
        if (typeof stream.nfd !== 'number') return EBADF;
        try {
          fs.fdatasyncSync(stream.nfd);
          return 0;
        } catch {
          return EIO;
        }
      };
    };
    return {
      emscriptenOpts: { ...emscriptenOpts, preRun: [giveFsync, ...(emscriptenOpts.preRun ?? [])] },
    };
  }
}

/** The part of Emscripten's FS, and of its in-memory file nodes, that releaseBundle uses. */
interface BundleFs {
  lookupPath(path: string): { node: FsNode };
  readdir(path: string): string[];
  unlink(path: string): void;
  isDir(mode: number): boolean;
  isFile(mode: number): boolean;
  isMountpoint(node: FsNode): boolean;
}
interface FsNode {
  mode: number;
  contents?: unknown;
  usedBytes?: number;
}

/** A file of PGlite's bundle, `pglite.data`, that PostgreSQL may read after it started. */
const READ_AFTER_START = [
  // TimeZone and its abbreviations, read whenever a zone is set or named
  '/pglite/share/postgresql/timezone',
  // triggers and functions in PL/pgSQL; each database loads it at its first use
  '/pglite/lib/postgresql/plpgsql.so',
];
/** Files this small are kept whatever they are: PGlite's own stubs among them. */
const SMALL_FILE = 8 * 1024;

/**
 * Gives back the memory of PGlite's file bundle once the database is open. PGlite reads
 * `pglite.data` (6.2 MB: the catalog template initdb loads, ICU's collation data,
 * encoding conversions, the snowball stemmers, build files, time zones) into one buffer,
 * and every file of its in-memory file system is a view of that buffer, so all of it
 * stayed resident for the life of the process, 6.1 MB of the service's RSS. After start
 * PostgreSQL reads only time zone files and PL/pgSQL's module from it (every file the
 * test suite opened outside the data directory, traced through FS.open, was one of
 * those). So those, and small files, are copied out, the rest removed, and the buffer
 * detached, which frees it even though PGlite's loader still references it. Should a
 * new PGlite lay its files out otherwise (no `postgres.bki` held as a view), nothing is
 * touched.
 */
export function releaseBundle(fsApi: BundleFs): number {
  let bki: unknown;
  try {
    bki = fsApi.lookupPath('/pglite/share/postgresql/postgres.bki').node.contents;
  } catch {
    return 0;
  }
  // the bundle is the larger buffer that file is a view of; any other layout is left alone
  if (!(bki instanceof Uint8Array) || !(bki.buffer instanceof ArrayBuffer)) return 0;
  if (bki.byteLength === bki.buffer.byteLength) return 0;
  const bundle = bki.buffer;
  const visit = (dir: string) => {
    for (const name of fsApi.readdir(dir)) {
      if (name === '.' || name === '..') continue;
      const path = dir === '/' ? `/${name}` : `${dir}/${name}`;
      const { node } = fsApi.lookupPath(path);
      if (fsApi.isDir(node.mode)) {
        if (!fsApi.isMountpoint(node) && path !== '/proc' && path !== '/dev') visit(path);
        continue;
      }
      const contents = node.contents;
      if (!fsApi.isFile(node.mode) || !(contents instanceof Uint8Array)) continue;
      if (contents.buffer !== bundle) continue;
      const keep =
        contents.byteLength <= SMALL_FILE || READ_AFTER_START.some((p) => path.startsWith(p));
      if (keep) node.contents = contents.slice(0, node.usedBytes ?? contents.byteLength);
      else fsApi.unlink(path);
    }
  };
  visit('/');
  const size = bundle.byteLength;
  try {
    structuredClone(bundle, { transfer: [bundle] });
  } catch {
    return 0; // not detachable: the files removed are gone, the memory stays
  }
  return size;
}

/**
 * When the embedded database checkpoints. PostgreSQL's server checkpoints by itself, on
 * a timer and once enough WAL has been written since the last checkpoint; PGlite runs
 * PostgreSQL as a single-user backend, which does neither (the request for one is made
 * only under a postmaster), so until the service stopped its WAL only grew: 1,377 MB in
 * `pg_wal` after 477,376 events published and delivered in 130 s, never trimmed, and a
 * restart after a crash would replay all of it. Here the same thresholds as the server's
 * defaults: a checkpoint once about half of `max_wal_size` (1 GB) has been written since
 * the last one, as the server's own formula gives for it, or once `checkpoint_timeout`
 * (5 minutes) has passed with WAL written since. Each checkpoint lets PostgreSQL recycle
 * or remove the WAL before it.
 */
export interface CheckpointPolicy {
  /** WAL written since the last checkpoint that calls for the next. */
  walBytes: number;
  /** Age of the last checkpoint that calls for the next, given `minWalBytes` since. */
  maxAgeMs: number;
  minWalBytes: number;
  /** How often the database is asked. */
  everyMs: number;
}

export const CHECKPOINTS: CheckpointPolicy = Object.freeze({
  walBytes: 512 * 1024 * 1024,
  maxAgeMs: 5 * 60_000,
  minWalBytes: 1024 * 1024,
  everyMs: 5_000,
});

/** WAL bytes written since the last checkpoint began, and that checkpoint's age. */
export async function sinceCheckpoint(db: Queryable): Promise<{ walBytes: number; ageMs: number }> {
  const { rows } = await db.query<{ walBytes: number; ageMs: number }>(
    `select (pg_current_wal_insert_lsn() - redo_lsn)::float8 as "walBytes",
            (extract(epoch from clock_timestamp() - checkpoint_time) * 1000)::float8 as "ageMs"
     from pg_control_checkpoint()`,
  );
  return rows[0]!;
}

/** Runs a CHECKPOINT when `policy` calls for one; true when it did. */
export async function checkpointIfDue(
  db: Queryable,
  policy: CheckpointPolicy = CHECKPOINTS,
): Promise<boolean> {
  const { walBytes, ageMs } = await sinceCheckpoint(db);
  const due =
    walBytes >= policy.walBytes || (ageMs >= policy.maxAgeMs && walBytes >= policy.minWalBytes);
  if (due) await db.query('checkpoint');
  return due;
}

/**
 * What the checkpoints of a data directory tell their owner: that they fail (the first
 * failure of a run, then at most once every CHECKPOINT_REPORT_EVERY_MS, with the count
 * so far), or that they work again after `recovered` failures. A check or CHECKPOINT
 * that fails leaves the WAL where it was and is tried again at the next tick; while
 * they fail, the WAL on disk only grows, which is what the owner needs to hear about
 * (a full disk, say).
 */
export type CheckpointReport = { failed: Error; failures: number } | { recovered: number };

export const CHECKPOINT_REPORT_EVERY_MS = 60_000;

/**
 * Checks `policy` every `policy.everyMs` and checkpoints when it calls for one, one at a
 * time (a tick while a checkpoint still runs waits for the next). Returns its stop,
 * which waits for a checkpoint in progress.
 */
function checkpointEvery(
  db: Queryable,
  policy: CheckpointPolicy,
  report: (r: CheckpointReport) => void,
): () => Promise<void> {
  let running: Promise<void> | undefined;
  let failures = 0;
  let reportedAt = 0;
  const timer = setInterval(() => {
    if (running) return;
    running = checkpointIfDue(db, policy)
      .then(
        () => {
          if (failures > 0) report({ recovered: failures });
          failures = 0;
        },
        (caught: unknown) => {
          failures++;
          const now = performance.now();
          if (failures > 1 && now - reportedAt < CHECKPOINT_REPORT_EVERY_MS) return;
          reportedAt = now;
          report({ failed: toError(caught), failures });
        },
      )
      .finally(() => (running = undefined));
  }, policy.everyMs).unref();
  return async () => {
    clearInterval(timer);
    await running;
  };
}

/**
 * Opens an embedded database: in memory when `dataDir` is undefined. On a data
 * directory it checkpoints by `checkpoints` (none when false), and tells
 * `onCheckpoint` when checkpoints fail or work again.
 */
export async function createPgliteDb(
  dataDir?: string,
  checkpoints: CheckpointPolicy | false = CHECKPOINTS,
  onCheckpoint: (report: CheckpointReport) => void = () => {},
): Promise<Db> {
  const lite = await PGlite.create({
    ...(dataDir === undefined
      ? { startParams: START_PARAMS }
      : { fs: new DurableNodeFS(dataDir), startParams: [...START_PARAMS, ...DURABLE_PARAMS] }),
    parsers: {
      [OID.int8]: parseInt8,
      [OID.timestamptz]: keepText,
      [OID.timestamp]: keepText,
    },
  });
  releaseBundle(lite.Module.FS as unknown as BundleFs);

  /*
   * Named statements, as on PostgreSQL: PGlite's own query() parses and plans every
   * statement afresh (a claim spent 1.6 ms planning for 1.1 ms of work), and it has no
   * way to name one. So a named statement is PREPAREd once in this session (PGlite is
   * one session) and run by a Bind message that names it, its values as text beside the
   * SQL rather than inside it (pglite-wire.ts), which leaves PostgreSQL free to keep a
   * generic plan, made under INDEX_PATHS_ONLY. The messages go through PGlite's own
   * protocol call under the same two locks its query() takes. A statement is
   * prepared only outside a transaction: inside one, a failed PREPARE would abort it,
   * and waiting for a PREPARE queued behind the transaction would never end. Until it is
   * prepared it runs as before.
   */
  const prepared = new Set<string>();
  const preparing = new Map<string, Promise<void>>();
  const prepare = (name: string, sql: string): Promise<void> => {
    let done = preparing.get(name);
    if (!done) {
      done = lite.query(`prepare ${name} as ${sql}`).then(
        () => {
          prepared.add(name);
        },
        (caught: unknown) => {
          preparing.delete(name);
          throw caught;
        },
      );
      preparing.set(name, done);
    }
    return done;
  };

  const wrap = (target: Pick<PGlite, 'query' | 'exec'>, inTransaction: boolean): Queryable => ({
    async query<R>(
      sql: string,
      params?: readonly unknown[],
      name?: string,
    ): Promise<QueryResult<R>> {
      if (name && !prepared.has(name) && !inTransaction) await prepare(name, sql);
      if (name && prepared.has(name)) {
        // The settings, the statement and the reset in one call, so nothing else runs in
        // this session between them. Outside a transaction each is its own implicit
        // transaction; the reset runs after a failed statement too, as the server skips
        // only to the Sync.
        const messages = frontend(
          wire.query(INDEX_PATHS_ONLY),
          wire.bind(name, (params ?? []).map(paramText)),
          wire.describePortal(),
          wire.execute(),
          wire.sync(),
          wire.query(RESET_PATHS),
        );
        // as PGlite's query() does, rather than call into a module that has shut down;
        // again once the locks are held, for a call that waited behind close()
        const open = () => {
          if (lite.closed) throw new Error('PGlite is closed');
        };
        open();
        const run = () =>
          lite._runExclusiveQuery(() => {
            open();
            return lite.execProtocolStream(messages, { syncToFs: !inTransaction });
          });
        const replies = await (inTransaction ? run() : lite._runExclusiveTransaction(run));
        const results = parse.parseResults(replies, lite.parsers);
        const result = results[results.length - 3]!;
        return {
          rows: result.rows as R[],
          rowCount: result.affectedRows ?? result.rows.length,
        };
      }
      const result = await target.query<R>(sql, params as unknown[] | undefined);
      return { rows: result.rows, rowCount: result.affectedRows ?? result.rows.length };
    },
  });
  const direct = wrap(lite, false);

  // in memory there is no WAL on disk to bound, nor a restart to shorten
  const stopCheckpoints =
    dataDir !== undefined && checkpoints
      ? checkpointEvery(direct, checkpoints, onCheckpoint)
      : async () => {};

  return {
    kind: 'pglite',
    query: direct.query,
    async exec(sql) {
      await lite.exec(sql);
    },
    transaction(fn) {
      return lite.transaction((tx) => fn(wrap(tx, true)));
    },
    async listen(channel, onMessage) {
      const unsubscribe = await lite.listen(channel, onMessage);
      return async () => {
        await unsubscribe();
      };
    },
    async close() {
      await stopCheckpoints();
      if (!lite.closed) await lite.close();
    },
  };
}
