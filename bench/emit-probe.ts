/**
 * Emit, for measuring fan-out: a fresh schema with `others` active webhooks subscribed
 * to other event types (half to names, half to patterns that do not match) and
 * `matching` webhooks subscribed to order.updated, the service started with role api
 * (nothing is delivered, so the figures are the API's and the database's alone), and a
 * closed loop of `emit` for order.updated for a few seconds. Prints emits/s, how many
 * events each emit published (checked against `matching`), and the CPU per emit.
 *
 *   node --import tsx bench/emit-probe.ts [others=2000] [matching=5] [seconds=5] [-- node flags]
 */
import { closedLoop, makePool } from './load.js';
import { addWebhook, probeArgs, probeSchema, startProbeService } from './probe.js';
import { cpuByPart, perEvent } from './processes.js';
import { insertOtherWebhooks } from '../test/helpers/rows.js';

const { args, nodeFlags } = probeArgs();
const others = Number(args[0] ?? 2000);
const matching = Number(args[1] ?? 5);
const seconds = Number(args[2] ?? 5);

const probe = await probeSchema();
try {
  // nobody listens on port 9: with role api nothing is sent anyway
  for (let i = 0; i < matching; i++)
    await addWebhook(probe, 'http://127.0.0.1:9/', { eventType: 'order.updated' });
  await insertOtherWebhooks(probe.db, probe.userId, { count: others, patterns: true });
  const service = await startProbeService(probe, { role: 'api', nodeFlags });
  try {
    const pool = makePool(service.api, 16);
    // through the API: on PGlite the service holds the database
    const countEvents = async () => {
      const res = await fetch(`${service.api}/api/v1/oms/oms_hook_events/?page_size=1`, {
        headers: probe.auth,
      });
      return ((await res.json()) as { count: number }).count;
    };
    const before = await countEvents();
    const cpu0 = cpuByPart(service.pid);
    const r = await closedLoop(
      pool,
      {
        origin: '',
        path: '/api/v1/oms/oms_hook_events/emit/',
        headers: probe.auth,
        body: (i) =>
          JSON.stringify({
            event_type: 'order.updated',
            instance: { pk: i, model: 'order', data: { n: i } },
          }),
        expect: 202,
      },
      seconds,
      16,
    );
    const cpu1 = cpuByPart(service.pid);
    await pool.close();
    const published = (await countEvents()) - before;
    const emits = r.requests - r.errors;
    process.stdout.write(
      `emit with ${others} other webhooks and ${matching} matching: ${r.perSecond.toFixed(0)} req/s, ` +
        `${r.errors} errors of ${r.requests}; ${published} events published ` +
        `(${(published / emits).toFixed(2)} per emit)\n`,
    );
    process.stdout.write(`CPU per emit, µs: ${perEvent(cpu0, cpu1, emits)}\n`);
  } finally {
    await service.stop();
  }
} finally {
  await probe.drop();
}
