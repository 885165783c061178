/**
 * The benchmark's backlog phase on its own: N events queued at once for one webhook at
 * the bench's receiver, seeded as the bench seeds them, then the service started with
 * every role and timed until the receiver has them all. Prints the rate every 10 s,
 * and at the end the CPU each part used per event (from /proc: the service's
 * processes, PostgreSQL's, the receiver) and the peak RSS of the service's largest
 * process. Extra node flags go to the service and its worker processes; PROBE_DB=pglite
 * runs it on the embedded database; IDLE=n adds n active webhooks of other tenants with
 * nothing queued, as a service with many integrators has; WAITING=n, n more with one
 * event each queued for a retry an hour away, as failing targets have; HOOK_CONFIG, the
 * busy webhook's `config` (its limits).
 *
 *   IDLE=5000 node --import tsx bench/backlog-probe.ts [events=300000] [-- node flags]
 *   HOOK_CONFIG='{"max_concurrency":50}' node --import tsx bench/backlog-probe.ts 50000
 */
import { insertOtherWebhooks, insertWaitingEvents } from '../test/helpers/rows.js';
import { addWebhook, probeArgs, probeSchema, seedEvents, startProbeService } from './probe.js';
import { RssPeak, cpuByPart, perEvent, startProcess } from './processes.js';

const { args, nodeFlags } = probeArgs();
const N = Number(args[0] ?? 300_000);

const receiver = await startProcess(['--import', 'tsx', 'bench/receiver.ts', '0']);
const origin = `http://127.0.0.1:${receiver.port}`;
const probe = await probeSchema();
try {
  const hook = await addWebhook(probe, `${origin}/seq/`, {
    config: JSON.parse(process.env.HOOK_CONFIG ?? '{}') as Record<string, unknown>,
  });
  const idle = Number(process.env.IDLE ?? 0);
  const waiting = Number(process.env.WAITING ?? 0);
  await insertOtherWebhooks(probe.db, probe.userId, { count: idle + waiting });
  await insertWaitingEvents(probe.db, waiting);
  await seedEvents(probe.db, hook, N, { queued: true, attempted: false });
  const received = async () =>
    ((await (await fetch(`${origin}/stats`)).json()) as { distinct: number }).distinct;
  const service = await startProbeService(probe, { nodeFlags });
  try {
    const cpuNow = () => cpuByPart(service.pid, receiver.child.pid!);
    const cpu0 = cpuNow();
    const peak = new RssPeak();
    const t0 = performance.now();
    let [lastAt, lastN] = [t0, 0];
    for (let got = 0; got < N; got = await received()) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      peak.sample(service.pid);
      if (performance.now() - lastAt >= 10_000) {
        const n = await received();
        const rate = (n - lastN) / ((performance.now() - lastAt) / 1000);
        const at = ((performance.now() - t0) / 1000).toFixed(0);
        process.stdout.write(`  ${at} s: ${n} received (${rate.toFixed(0)}/s)\n`);
        [lastAt, lastN] = [performance.now(), n];
      }
    }
    const seconds = (performance.now() - t0) / 1000;
    process.stdout.write(
      `${N} events drained in ${seconds.toFixed(1)} s (${(N / seconds).toFixed(0)}/s)\n` +
        `CPU per event, µs: ${perEvent(cpu0, cpuNow(), N)}\n` +
        `peak RSS of the service's largest process: ${peak.largest.toFixed(0)} MB\n`,
    );
  } finally {
    await service.stop();
  }
} finally {
  await probe.drop();
  receiver.child.kill();
}
