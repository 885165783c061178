import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { systemClock } from '../../src/core/clock.js';
import { Worker, type WorkerOptions } from '../../src/delivery/worker.js';
import type { Db } from '../../src/store/db.js';
import type { Context } from '../helpers/context.js';

/**
 * A worker on real time beside the context's manual-clock one, for tests of the running
 * pipeline (start/stop). The context's clock is moved to now first, so that events the
 * API enqueues are due for it.
 */
export function realWorker(ctx: Context, options: Partial<WorkerOptions> = {}): Worker {
  ctx.clock.set(Date.now());
  return new Worker({
    db: ctx.db,
    clock: systemClock,
    sender: ctx.sender,
    logger: pino({ level: 'silent' }),
    batchSize: ctx.config.workerBatchSize,
    concurrency: ctx.config.workerConcurrency,
    leaseMs: ctx.config.leaseMs,
    pollIntervalMs: 200,
    requestTimeoutMs: ctx.config.requestTimeoutMs,
    ...options,
  });
}

/** Polls `check` until it holds; fails after `timeoutMs` (an upper bound, not a threshold). */
export async function until(
  what: string,
  check: () => Promise<boolean> | boolean,
  timeoutMs = 15_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** The single number a `select count(*) ...` answers. */
export async function count(db: Db, sql: string, params: unknown[] = []): Promise<number> {
  const { rows } = await db.query(sql, params);
  return Number(Object.values(rows[0]!)[0]);
}

/**
 * A target that answers after `delayMs` and keeps, per path, how many requests it holds
 * at once (`now`) and the most it ever held (`max`): what a limit on concurrency is about.
 */
export class Gauge {
  readonly now = new Map<string, number>();
  readonly max = new Map<string, number>();
  readonly seen: { path: string; body: string }[] = [];
  private constructor(private readonly server: Server) {}

  static async start(delayMs: number): Promise<Gauge> {
    const holder: { gauge?: Gauge } = {};
    const server = createServer((req, res) => {
      const path = req.url ?? '';
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const g = holder.gauge!;
        const held = (g.now.get(path) ?? 0) + 1;
        g.now.set(path, held);
        g.max.set(path, Math.max(held, g.max.get(path) ?? 0));
        g.seen.push({ path, body: Buffer.concat(chunks).toString('utf8') });
        setTimeout(() => {
          g.now.set(path, (g.now.get(path) ?? 1) - 1);
          res.end('ok');
        }, delayMs);
      });
    });
    const gauge = new Gauge(server);
    holder.gauge = gauge;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return gauge;
  }

  url(path: string): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}${path}`;
  }

  count(path: string): number {
    return this.seen.filter((s) => s.path === path).length;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
