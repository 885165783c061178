/**
 * Publish, for profiling: a fresh schema, one webhook, the service started with the
 * given role, and a closed loop of publish-event for a few seconds. With role api (the
 * default) nothing is delivered and no worker competes; with role all the webhook points
 * at the bench's receiver and the events are delivered while they are published, as in
 * the benchmark's publish phase. Extra node flags (--cpu-prof) go to the service and
 * its worker processes; PROBE_PG_OPTIONS adds server settings (see probe.ts). Ends
 * with the CPU each part used per event published (the load generator, this process,
 * left out), up to the last delivery with role all. OTHERS=n adds n active webhooks of
 * other event types, as other tenants' would be.
 *
 *   node --import tsx bench/publish-probe.ts [seconds] [role] [-- node flags]
 */
import { closedLoop, makePool } from './load.js';
import { addWebhook, probeArgs, probeSchema, startProbeService } from './probe.js';
import { cpuByPart, perEvent, startProcess } from './processes.js';
import { insertOtherWebhooks } from '../test/helpers/rows.js';

const { args, nodeFlags } = probeArgs();
const seconds = Number(args[0] ?? 5);
const role = args[1] ?? 'api';

const receiver =
  role === 'api' ? undefined : await startProcess(['--import', 'tsx', 'bench/receiver.ts', '0']);
const origin = receiver ? `http://127.0.0.1:${receiver.port}` : undefined;
const probe = await probeSchema();
try {
  // with role api nothing is delivered: the target is a port where nobody listens
  const hook = await addWebhook(probe, origin ? `${origin}/probe/` : 'http://127.0.0.1:9/', {
    retrySeconds: 60,
  });
  await insertOtherWebhooks(probe.db, probe.userId, { count: Number(process.env.OTHERS ?? 0) });
  const service = await startProbeService(probe, { role, nodeFlags });
  try {
    const pool = makePool(service.api);
    const cpuNow = () => cpuByPart(service.pid, receiver?.child.pid);
    const cpu0 = cpuNow();
    const body = (i: number) =>
      JSON.stringify({
        hook,
        instance: { pk: i, model: 'package', data: { pad: 'p'.repeat(900) } },
      });
    const r = await closedLoop(
      pool,
      {
        origin: '',
        path: '/api/v1/oms/oms_hook_events/publish-event/',
        headers: probe.auth,
        body,
        expect: 202,
      },
      seconds,
      64,
    );
    await pool.close();
    process.stdout.write(
      `publish: ${r.perSecond.toFixed(0)} req/s, ${r.errors} errors of ${r.requests}\n`,
    );
    if (origin) {
      const t = performance.now();
      const want = r.requests - r.errors;
      const arrived = async () =>
        ((await (await fetch(`${origin}/stats`)).json()) as { distinct: number }).distinct;
      let got = await arrived();
      while (got < want && performance.now() - t < 60_000) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        got = await arrived();
      }
      process.stdout.write(
        `delivered ${got} of ${want}, ${((performance.now() - t) / 1000).toFixed(2)} s after the last publish\n`,
      );
    }
    process.stdout.write(`CPU per event, µs: ${perEvent(cpu0, cpuNow(), r.requests - r.errors)}\n`);
  } finally {
    await service.stop();
  }
} finally {
  receiver?.child.kill('SIGTERM');
  await probe.drop();
}
