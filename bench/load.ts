import { Pool } from 'undici';

/** Load drivers: closed loop (as fast as answers come) and open loop (a fixed rate). */
export interface LoadResult {
  requests: number;
  errors: number;
  seconds: number;
  perSecond: number;
  latenciesMs: number[];
}

export interface Target {
  origin: string;
  path: string;
  headers?: Record<string, string>;
  /** The body of request number i. */
  body: (i: number) => string;
  expect: number;
}

export function makePool(origin: string, connections = 64): Pool {
  return new Pool(origin, { connections, pipelining: 1, keepAliveTimeout: 60_000 });
}

async function once(pool: Pool, t: Target, i: number): Promise<boolean> {
  const res = await pool.request({
    method: 'POST',
    path: t.path,
    headers: { 'content-type': 'application/json', ...t.headers },
    body: t.body(i),
  });
  await res.body.dump();
  return res.statusCode === t.expect;
}

export async function closedLoop(
  pool: Pool,
  t: Target,
  seconds: number,
  concurrency: number,
): Promise<LoadResult> {
  const started = performance.now();
  const deadline = started + seconds * 1000;
  let next = 0;
  let errors = 0;
  const latenciesMs: number[] = [];
  const lane = async () => {
    while (performance.now() < deadline) {
      const i = next++;
      const t0 = performance.now();
      try {
        if (!(await once(pool, t, i))) errors++;
      } catch {
        errors++;
      }
      latenciesMs.push(performance.now() - t0);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, lane));
  const elapsed = (performance.now() - started) / 1000;
  return {
    requests: next,
    errors,
    seconds: elapsed,
    perSecond: (next - errors) / elapsed,
    latenciesMs,
  };
}

/**
 * Sends at `rate` per second for `seconds`, whatever the answers do; latency per request,
 * counted from when the request was due, not from when it went out: a generator that
 * falls behind its schedule (its event loop busy with answers) would otherwise leave
 * that delay out of every request it made late.
 */
export async function openLoop(
  pool: Pool,
  t: Target,
  seconds: number,
  rate: number,
): Promise<LoadResult & { dueAt(i: number): number }> {
  const total = Math.round(seconds * rate);
  const started = performance.now();
  const latenciesMs: number[] = [];
  let errors = 0;
  const inflight: Promise<void>[] = [];
  const due = (i: number) => started + (i * 1000) / rate;
  for (let i = 0; i < total; i++) {
    const t0 = due(i);
    const wait = t0 - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    // by request number, so that a probe can tell which requests were slow
    inflight.push(
      once(pool, t, i).then(
        (ok) => {
          if (!ok) errors++;
          latenciesMs[i] = performance.now() - t0;
        },
        () => {
          errors++;
          latenciesMs[i] = performance.now() - t0;
        },
      ),
    );
  }
  await Promise.all(inflight);
  const elapsed = (performance.now() - started) / 1000;
  return {
    requests: total,
    errors,
    seconds: elapsed,
    perSecond: (total - errors) / elapsed,
    latenciesMs,
    /** When request i was due, in ms since the epoch (as a receiver's Date.now()). */
    dueAt: (i) => performance.timeOrigin + due(i),
  };
}

/** The mean of some values; NaN for none. */
export function mean(values: number[]): number {
  return values.reduce((sum, x) => sum + x, 0) / values.length;
}

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/**
 * `n` publishes through `emit`, 16 in flight at a time on a pool of their own, each
 * fanning out to every active webhook of `order.updated`: the isolation phase's load.
 */
export async function emitOrders(
  api: string,
  headers: Record<string, string>,
  n: number,
): Promise<void> {
  const pool = makePool(api, 16);
  const emit = (i: number) =>
    pool
      .request({
        method: 'POST',
        path: '/api/v1/oms/oms_hook_events/emit/',
        headers: { ...headers, 'content-type': 'application/json' },
        body: JSON.stringify({
          event_type: 'order.updated',
          instance: { pk: i, model: 'order', data: { n: i } },
        }),
      })
      .then((r) => r.body.dump());
  try {
    for (let i = 0; i < n; i += 16)
      await Promise.all(Array.from({ length: Math.min(16, n - i) }, (_, k) => emit(i + k)));
  } finally {
    await pool.close();
  }
}
