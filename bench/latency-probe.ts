/**
 * Publish-to-arrival latency, for finding where its tail comes from: a fresh schema,
 * one webhook at the bench's receiver, the service started with every role, an
 * optional closed loop of publishes first (to grow the tables and the dead rows as the
 * benchmark's earlier phases do), then publishes at a fixed rate. Prints p50, p99 and
 * max of the publish requests alone and of publish to arrival, the slowest seconds, the
 * slowest 1% (how long their publishes took to answer, and the tenths of a second they
 * were due in), and the CPU each part used per event at that rate (the load generator
 * left out).
 * Extra node flags go to the service and its worker processes; PROBE_PG_OPTIONS adds
 * server settings (see probe.ts).
 *
 *   node --import tsx bench/latency-probe.ts [seconds] [rate] [warm-up seconds] [-- node flags]
 */
import { closedLoop, makePool, mean, openLoop, percentile, type Target } from './load.js';
import { addWebhook, probeArgs, probeSchema, startProbeService } from './probe.js';
import { cpuByPart, perEvent, startProcess } from './processes.js';

const { args, nodeFlags } = probeArgs();
const seconds = Number(args[0] ?? 15);
const rate = Number(args[1] ?? 2_000);
const warmSeconds = Number(args[2] ?? 0);

const receiver = await startProcess(['--import', 'tsx', 'bench/receiver.ts', '0']);
const origin = `http://127.0.0.1:${receiver.port}`;
const probe = await probeSchema();
try {
  const hook = await addWebhook(probe, `${origin}/seq/`);
  const service = await startProbeService(probe, { nodeFlags });
  try {
    const pool = makePool(service.api);
    const stats = async () =>
      ((await (await fetch(`${origin}/stats`)).json()) as { distinct: number }).distinct;
    const until = async (want: number) => {
      const t = performance.now();
      while ((await stats()) < want && performance.now() - t < 120_000)
        await new Promise((resolve) => setTimeout(resolve, 50));
    };
    // commits in the whole database and WAL flushes (PostgreSQL), the probe's few included
    const walCounts = async () =>
      (
        await probe.admin?.query<{ commits: string; syncs: string }>(
          `select (select sum(xact_commit) from pg_stat_database) as commits,
                (select wal_sync from pg_stat_wal) as syncs`,
        )
      )?.rows.map((r) => ({ commits: Number(r.commits), syncs: Number(r.syncs) }))[0];
    const target = (base: number): Target => ({
      origin: '',
      path: '/api/v1/oms/oms_hook_events/publish-event/',
      headers: probe.auth,
      body: (i) =>
        JSON.stringify({
          hook,
          instance: { pk: i, model: 'package', data: { seq: base + i, pad: 'p'.repeat(900) } },
        }),
      expect: 202,
    });
    if (warmSeconds > 0) {
      const warm = await closedLoop(pool, target(0), warmSeconds, 64);
      await until(warm.requests - warm.errors);
      process.stdout.write(`warm-up: ${warm.requests} published and delivered\n`);
      await fetch(`${origin}/reset`, { method: 'POST' });
    }
    const base = 10_000_000;
    const cpuNow = () => cpuByPart(service.pid, receiver.child.pid);
    const cpu0 = cpuNow();
    const wal0 = await walCounts();
    const steady = await openLoop(pool, target(base), seconds, rate);
    const started = steady.dueAt(0);
    await until(steady.requests - steady.errors);
    const cpu = perEvent(cpu0, cpuNow(), steady.requests - steady.errors);
    const wal1 = await walCounts();
    const arrivals = (await (await fetch(`${origin}/arrivals`)).json()) as Record<string, number>;
    const worstBySecond = new Map<number, number>();
    /** [request number, publish to arrival] */
    const measured: [number, number][] = [];
    for (const [seq, at] of Object.entries(arrivals)) {
      const i = Number(seq) - base;
      if (i < 0 || i >= steady.requests) continue;
      // from when the publish was due, as the open loop counts its requests
      const sent = steady.dueAt(i);
      measured.push([i, at - sent]);
      const second = Math.floor((sent - started) / 1000);
      worstBySecond.set(second, Math.max(worstBySecond.get(second) ?? 0, at - sent));
    }
    const lat = measured.map(([, ms]) => ms);
    // The slowest 1%: how much of their time went to the publish's answer, and when they
    // were due, by tenths of a second (a stall shows as tenths full of them).
    const slowest = measured.sort((a, b) => b[1] - a[1]).slice(0, Math.ceil(lat.length / 100));
    const byTenth = new Map<number, number>();
    for (const [i] of slowest) {
      const tenth = Math.floor((steady.dueAt(i) - started) / 100) / 10;
      byTenth.set(tenth, (byTenth.get(tenth) ?? 0) + 1);
    }
    const fmt = (v: number[]) =>
      `p50 ${percentile(v, 50).toFixed(1)} p99 ${percentile(v, 99).toFixed(1)} max ${v.reduce((m, x) => Math.max(m, x), 0).toFixed(1)} ms`;
    process.stdout.write(
      // the clock time the seconds below count from, to find them in a server's log
      `${steady.requests} at ${rate}/s from ${new Date(started).toISOString()}, ` +
        `${steady.errors} errors\n` +
        `publish requests: ${fmt(steady.latenciesMs)}\n` +
        `publish to arrival: ${fmt(lat)} (${lat.length} measured)\n` +
        `CPU per event, µs: ${cpu}\n` +
        (wal0 && wal1
          ? `per event: ${((wal1.commits - wal0.commits) / steady.requests).toFixed(2)} commits, ${((wal1.syncs - wal0.syncs) / steady.requests).toFixed(2)} WAL flushes\n`
          : '') +
        `worst arrival by second: ${[...worstBySecond.entries()]
          .sort((a, b) => a[0] - b[0])
          .map(([s, ms]) => `${s}:${ms.toFixed(0)}`)
          .join(' ')}\n` +
        `slowest 1% (${slowest.length}): arrival ${mean(slowest.map(([, ms]) => ms)).toFixed(1)} ms ` +
        `on average, the publish answered after ${mean(slowest.map(([i]) => steady.latenciesMs[i]!)).toFixed(1)}; ` +
        `due at (s: how many) ${[...byTenth.entries()]
          .sort((a, b) => a[0] - b[0])
          .map(([t, n]) => `${t.toFixed(1)}:${n}`)
          .join(' ')}\n`,
    );
    await pool.close();
  } finally {
    await service.stop();
  }
} finally {
  receiver.child.kill('SIGTERM');
  await probe.drop();
}
