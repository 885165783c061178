import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { Db, QueryResult, Queryable } from './db.js';
import type { CheckpointPolicy, CheckpointReport } from './pglite.js';

/** What the main thread asks the database thread (pglite-host.ts). */
export type HostRequest =
  | {
      id: number;
      op: 'query';
      sql: string;
      params?: readonly unknown[];
      name?: string;
      tx?: number;
    }
  | { id: number; op: 'exec'; sql: string }
  | { id: number; op: 'begin' }
  | { id: number; op: 'end'; tx: number; commit: boolean }
  | { id: number; op: 'listen'; channel: string }
  | { id: number; op: 'unlisten'; listener: number }
  | { id: number; op: 'close' };

/** Its answer to request `id`: a value, or the error's message, name and plain fields. */
export type HostReply =
  | { id: number; ok: true; value: unknown }
  | { id: number; ok: false; message: string; name: string; fields: Record<string, unknown> };

/** A request before its id is given: Omit over each member of the union. */
type Unsent<T> = T extends unknown ? Omit<T, 'id'> : never;

/** A CheckpointReport as it crosses to the main thread: the error as a HostReply carries it. */
export type ThreadCheckpointReport =
  (Omit<HostReply & { ok: false }, 'id' | 'ok'> & { failures: number }) | { recovered: number };

/**
 * A reply, a NOTIFY for the listener that the `listen` request `notify` set up, a
 * report of the checkpoints, or ready.
 */
type HostMessage =
  | HostReply
  | { notify: number; payload: string }
  | { checkpoint: ThreadCheckpointReport }
  | { ready: true };

/** The error a reply or report carries, as the main thread rebuilds it. */
const rebuilt = (e: { message: string; name: string; fields: Record<string, unknown> }): Error =>
  Object.assign(new Error(e.message), e.fields, { name: e.name });

const fromSources = () => import.meta.url.endsWith('.ts');

/**
 * Creates the database cluster in an empty `dataDir`, in a process that ends when it is
 * done. PGlite's initdb copies PostgreSQL's whole WebAssembly memory aside to restore it
 * after, and the instance that ran it kept that memory for the rest of its life: a
 * service started on a new data directory ran at about 790 MB RSS, and at about 300 MB
 * when started again on the same directory. A thread that ended took its memory back to
 * the allocator but not all of it to the system (about 390 MB); a process gives it all.
 */
async function createCluster(dataDir: string): Promise<void> {
  const script = fileURLToPath(
    new URL(`./pglite-create.${fromSources() ? 'ts' : 'js'}`, import.meta.url),
  );
  const child = spawn(
    process.execPath,
    [...(fromSources() ? ['--import', 'tsx'] : []), script, dataDir],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  await new Promise<void>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) =>
      code === 0
        ? resolve()
        : reject(new Error(`creating the database failed (exit ${code}): ${stderr.trim()}`)),
    );
  });
}

/**
 * The database thread's V8 limits. What its JavaScript allocates (each statement's
 * messages and rows, passed on at once) dies young, yet left to V8 its young generation
 * grew as large as a busy main thread's: in a drain of 300,000 events
 * (`PROBE_DB=pglite bench/backlog-probe.ts 300000 -- --trace-gc`) the thread's heap took
 * up to 50 MB of memory for 11-14 MB live after each full collection. With the young
 * generation capped at 8 MB it took at most 25 MB for the same 11-12 MB live, and no
 * collection paused the thread longer (7.6 ms at most, against 9.4). Only the young
 * generation is capped: a thread that reaches its old generation's limit is ended.
 */
const THREAD_LIMITS = Object.freeze({ maxYoungGenerationSizeMb: 8 });

/**
 * The embedded database on a thread of its own. PGlite runs PostgreSQL inside the
 * JavaScript thread that calls it: in one thread the HTTP server, the deliveries and
 * every statement's planning and execution share one core, and a long statement (a
 * VACUUM, a count over a million events) holds up every request meanwhile. Here the
 * database gets a second core and the main thread only passes messages; the same
 * adapter (pglite.ts) answers on the other side, so statements, named statements,
 * transactions and LISTEN behave as they do in-process.
 */
export async function createPgliteThreadDb(
  dataDir?: string,
  options: {
    /** The checkpoints of a data directory (the service's own unless given). */
    checkpoints?: CheckpointPolicy | false;
    /** Told when checkpoints fail, and when they work again (see CheckpointReport). */
    onCheckpoint?: (report: CheckpointReport) => void;
  } = {},
): Promise<Db> {
  if (dataDir !== undefined && !existsSync(join(dataDir, 'PG_VERSION')))
    await createCluster(dataDir);
  const host = new URL(`./pglite-host.${fromSources() ? 'ts' : 'js'}`, import.meta.url);
  const workerData = { dataDir, checkpoints: options.checkpoints };
  const thread = fromSources()
    ? // run from the .ts sources (tests, `npm run dev`): the thread loads tsx first
      new Worker(
        `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(host.href)}); })`,
        { eval: true, workerData, resourceLimits: THREAD_LIMITS },
      )
    : new Worker(host, { workerData, resourceLimits: THREAD_LIMITS });
  const pending = new Map<
    number,
    { resolve: (v: unknown) => void; reject: (e: unknown) => void }
  >();
  const listeners = new Map<number, (payload: string) => void>();
  let nextId = 1;
  let failure: Error | undefined;

  const ready = new Promise<void>((resolve, reject) => {
    thread.once('error', reject);
    thread.on('message', (m: HostMessage) => {
      if ('ready' in m) return resolve();
      if ('notify' in m) return listeners.get(m.notify)?.(m.payload);
      if ('checkpoint' in m) {
        const c = m.checkpoint;
        return options.onCheckpoint?.(
          'recovered' in c ? c : { failed: rebuilt(c), failures: c.failures },
        );
      }
      const call = pending.get(m.id);
      if (!call) return;
      pending.delete(m.id);
      if (m.ok) call.resolve(m.value);
      else call.reject(rebuilt(m));
    });
  });
  const gone = (error: Error) => {
    failure = error;
    for (const call of pending.values()) call.reject(error);
    pending.clear();
  };
  thread.on('error', gone);
  thread.on('exit', (code) => gone(new Error(`the database thread exited (${code})`)));
  try {
    await ready;
  } catch (error) {
    await thread.terminate();
    throw error;
  }

  const ask = <T>(request: Unsent<HostRequest>, id = nextId++): Promise<T> => {
    if (failure) return Promise.reject(failure);
    return new Promise<T>((resolve, reject) => {
      pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      thread.postMessage({ ...request, id });
    });
  };
  const queryable = (tx?: number): Queryable => ({
    query<R>(sql: string, params?: readonly unknown[], name?: string) {
      return ask<QueryResult<R>>({ op: 'query', sql, params, name, tx });
    },
  });
  const direct = queryable();

  return {
    kind: 'pglite',
    query: direct.query,
    exec: (sql) => ask<void>({ op: 'exec', sql }),
    async transaction(fn) {
      const tx = await ask<number>({ op: 'begin' });
      let result;
      try {
        result = await fn(queryable(tx));
      } catch (error) {
        await ask({ op: 'end', tx, commit: false });
        throw error;
      }
      await ask({ op: 'end', tx, commit: true });
      return result;
    },
    async listen(channel, onMessage) {
      // known before the LISTEN runs, so no notification finds it missing
      const listener = nextId++;
      listeners.set(listener, onMessage);
      try {
        await ask({ op: 'listen', channel }, listener);
      } catch (error) {
        listeners.delete(listener);
        throw error;
      }
      return async () => {
        listeners.delete(listener);
        await ask({ op: 'unlisten', listener });
      };
    },
    async close() {
      if (failure) return;
      await ask({ op: 'close' });
      await thread.terminate();
    },
  };
}
