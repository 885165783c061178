/**
 * The benchmark's isolation phase alone, repeated: a fresh schema, 20 healthy webhooks
 * and a 21st whose target hangs until the sender's timeout (or `hanging` such webhooks;
 * with `slow`, targets that answer after 5 s instead), the service started with every
 * role, and runs of emits alternating without and with those webhooks. Prints each
 * run's healthy deliveries per second and the transactions the database committed per
 * healthy delivery (claims, records and publishes all count; on PostgreSQL only, whose
 * statistics another client can read), then the ratio. OTHERS=n adds n active webhooks
 * of other tenants with nothing queued.
 *
 *   node --import tsx bench/isolation-probe.ts [pairs=3] [emits=2000] [hanging=1] [hang|slow] [-- node flags]
 */
import { insertOtherWebhooks } from '../test/helpers/rows.js';
import { emitOrders, mean } from './load.js';
import { addWebhook, probeArgs, probeSchema, startProbeService } from './probe.js';
import { startProcess } from './processes.js';

const { args, nodeFlags } = probeArgs();
const pairs = Number(args[0] ?? 3);
const emits = Number(args[1] ?? 2_000);
const hangingCount = Number(args[2] ?? 1);
const kind = args[3] === 'slow' ? 'slow' : 'hang';
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const receiver = await startProcess(['--import', 'tsx', 'bench/receiver.ts', '0']);
const recv = `http://127.0.0.1:${receiver.port}`;
const probe = await probeSchema();
const admin = probe.admin;
try {
  const hook = (target: string, active: boolean) =>
    addWebhook(probe, target, { eventType: 'order.updated', active });
  for (let i = 0; i < 20; i++) await hook(`${recv}/ok/${i}`, true);
  const hanging: number[] = [];
  for (let i = 0; i < hangingCount; i++) hanging.push(await hook(`${recv}/${kind}/${i}`, false));
  await insertOtherWebhooks(probe.db, probe.userId, { count: Number(process.env.OTHERS ?? 0) });
  const service = await startProbeService(probe, { nodeFlags });
  try {
    const stats = async () =>
      (await (await fetch(`${recv}/stats`)).json()) as { count: number; hanging: number };
    // PostgreSQL's statistics; PGlite's database belongs to the service's process alone
    const commits = async (on: NonNullable<typeof admin>) => {
      await on.query('select pg_stat_clear_snapshot()');
      const { rows } = await on.query<{ n: string }>(
        `select xact_commit as n from pg_stat_database where datname = current_database()`,
      );
      return Number(rows[0]!.n);
    };
    const emitRun = async () => {
      await fetch(`${recv}/reset`, { method: 'POST' });
      const before = admin && (await commits(admin));
      const started = performance.now();
      await emitOrders(service.api, probe.auth, emits);
      while ((await stats()).count < emits * 20) await sleep(20);
      const seconds = (performance.now() - started) / 1000;
      // statistics reach pg_stat_database within the stats flush interval (about a second)
      let perDelivery: number | undefined;
      if (admin && before !== undefined) {
        await sleep(1_500);
        perDelivery = ((await commits(admin)) - before) / (emits * 20);
      }
      return { perSecond: (await stats()).count / seconds, perDelivery };
    };
    const setHanging = async (active: boolean) => {
      for (const id of hanging)
        await fetch(`${service.api}/api/v1/oms/webhooks/${id}/`, {
          method: 'PATCH',
          headers: { ...probe.auth, 'content-type': 'application/json' },
          body: JSON.stringify({ is_active: active }),
        }).then((r) => r.arrayBuffer());
    };
    await emitRun(); // warm-up
    const runs = { without: [] as number[], with: [] as number[] };
    for (let p = 0; p < pairs; p++) {
      for (const hang of p % 2 === 0 ? [false, true] : [true, false]) {
        await setHanging(hang);
        if (!hang && kind === 'slow') await sleep(5_500); // their requests still out end
        if (!hang && kind === 'hang') {
          do {
            await fetch(`${recv}/unhang`, { method: 'POST' });
            await sleep(300);
          } while ((await stats()).hanging > 0);
        }
        const r = await emitRun();
        (hang ? runs.with : runs.without).push(r.perSecond);
        const commitsNote =
          r.perDelivery === undefined ? '' : `, ${r.perDelivery.toFixed(3)} commits per delivery`;
        process.stdout.write(
          `${hang ? 'with   ' : 'without'} ${r.perSecond.toFixed(0)} deliveries/s${commitsNote}\n`,
        );
      }
    }
    process.stdout.write(`ratio ${(mean(runs.with) / mean(runs.without)).toFixed(3)}\n`);
    await fetch(`${recv}/unhang`, { method: 'POST' });
  } finally {
    await service.stop();
  }
} finally {
  receiver.child.kill('SIGTERM');
  await probe.drop();
}
