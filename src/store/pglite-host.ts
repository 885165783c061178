/**
 * The thread that runs the embedded database (see pglite-thread.ts): it opens PGlite with
 * the usual adapter and answers the requests of the main thread one message at a time.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { Queryable } from './db.js';
import { createPgliteDb } from './pglite.js';
import type { HostReply, HostRequest } from './pglite-thread.js';

const port = parentPort!;
const db = await createPgliteDb((workerData as { dataDir?: string }).dataDir);

/** Open transactions by id, each waiting for the main thread's commit or rollback. */
const transactions = new Map<number, { tx: Queryable; end: (commit: boolean) => void }>();
let nextTx = 1;

/** Everything an error carries that a caller may read (code, detail, constraint, ...). */
function errorFields(caught: unknown): HostReply & { ok: false } {
  const error = caught instanceof Error ? caught : new Error(String(caught));
  const fields: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(error)) {
    if (v === undefined || typeof v === 'function' || (typeof v === 'object' && v !== null))
      continue;
    fields[k] = v;
  }
  return { id: 0, ok: false, message: error.message, name: error.name, fields };
}

const answer = (id: number, run: () => Promise<unknown>): void => {
  run().then(
    (value) => port.postMessage({ id, ok: true, value } satisfies HostReply),
    (caught: unknown) => port.postMessage({ ...errorFields(caught), id } satisfies HostReply),
  );
};

port.on('message', (m: HostRequest) => {
  switch (m.op) {
    case 'query':
      return answer(m.id, async () => {
        const on = m.tx === undefined ? db : transactions.get(m.tx)?.tx;
        if (!on) throw new Error('the transaction has ended');
        return on.query(m.sql, m.params, m.name);
      });
    case 'exec':
      return answer(m.id, () => db.exec(m.sql));
    case 'begin':
      return answer(
        m.id,
        () =>
          new Promise<number>((began, failed) => {
            const id = nextTx++;
            db.transaction(
              (tx) =>
                new Promise<void>((resolve, reject) => {
                  transactions.set(id, {
                    tx,
                    end: (commit) => (commit ? resolve() : reject(new RolledBack())),
                  });
                  began(id);
                }),
            ).then(
              () => settle(id, undefined),
              (caught: unknown) => settle(id, caught instanceof RolledBack ? undefined : caught),
            );
            // a BEGIN that failed never reached the body: answer the request with it
            ended.set(id, failed);
          }),
      );
    case 'end': {
      const open = transactions.get(m.tx);
      if (!open) return port.postMessage({ id: m.id, ok: true, value: null } satisfies HostReply);
      transactions.delete(m.tx);
      waiting.set(m.tx, m.id);
      open.end(m.commit);
      return;
    }
    case 'listen':
      return answer(m.id, async () => {
        const stop = await db.listen(m.channel, (payload) =>
          port.postMessage({ notify: m.id, payload }),
        );
        listeners.set(m.id, stop);
      });
    case 'unlisten':
      return answer(m.id, async () => {
        const stop = listeners.get(m.listener);
        listeners.delete(m.listener);
        await stop?.();
      });
    case 'close':
      return answer(m.id, () => db.close());
  }
});

class RolledBack extends Error {}

/** The request that asked to end each transaction, answered once PGlite has ended it. */
const waiting = new Map<number, number>();
/** Rejects a BEGIN whose transaction failed before its body ran. */
const ended = new Map<number, (error: unknown) => void>();
const listeners = new Map<number, () => Promise<void>>();

function settle(tx: number, error: unknown): void {
  const failedBegin = ended.get(tx);
  ended.delete(tx);
  const request = waiting.get(tx);
  waiting.delete(tx);
  transactions.delete(tx);
  if (request === undefined) {
    if (error !== undefined) failedBegin?.(error);
    return;
  }
  port.postMessage(
    error === undefined
      ? ({ id: request, ok: true, value: null } satisfies HostReply)
      : { ...errorFields(error), id: request },
  );
}

port.postMessage({ ready: true });
