import type { Logger } from 'pino';
import { buildApp } from '../api/app.js';
import type { Clock } from '../core/clock.js';
import { toError } from '../core/errors.js';
import type { Config } from '../config/config.js';
import { Sender } from '../delivery/sender.js';
import { Worker } from '../delivery/worker.js';
import { HandoffCredit } from '../queue/handoff.js';
import { Heartbeat } from '../maintenance/heartbeat.js';
import { Maintenance } from '../maintenance/maintenance.js';
import { migrate } from '../store/migrate.js';
import type { Db } from '../store/db.js';
import { openDb, openWorkerDb } from '../store/open.js';
import { createFirstAdmin } from '../store/tokens.js';
import { serveParentHandoffs, WorkerProcesses, workerProcessCount } from './worker-processes.js';
import { growHeapsByHalf } from './heap.js';

/**
 * Runs the roles this process was given until SIGTERM or SIGINT: `api` (HTTP), `worker`
 * (deliveries, with a heartbeat), `maintenance` (lease rescue, retention, auto-disable),
 * or `all` of them. Shutdown stops taking requests and claiming events, gives in-flight
 * attempts the grace period, releases whatever is still leased, and closes the database.
 */
export async function serve(config: Config, logger: Logger, clock: Clock): Promise<number> {
  // set before the database thread starts, so that its heap is made with it too
  if (!config.databaseUrl) growHeapsByHalf();
  const db = await openDb(config, logger);
  const { applied } = await migrate(db);
  if (applied.length) logger.info({ applied }, 'migrations applied');

  const runsApi = config.role === 'all' || config.role === 'api';
  const childWorkers = workerProcessCount(config);
  const runsWorker = config.role === 'worker' || (config.role === 'all' && childWorkers === 0);
  const runsMaintenance = config.role === 'all' || config.role === 'maintenance';

  const sender = new Sender({
    responseCapBytes: config.responseCapBytes,
    allowPrivateTargets: config.allowPrivateTargets,
    allowedTargetCidrs: config.allowedTargetCidrs,
    // the worker's slots, plus room for attempt callbacks and source fetches
    connectionsPerOrigin: Math.max(64, config.workerConcurrency + 32),
  });
  let worker: Worker | undefined;
  let workerDb: Db | undefined;
  let heartbeat: Heartbeat | undefined;
  let maintenance: Maintenance | undefined;
  let app: ReturnType<typeof buildApp> | undefined;
  let children: WorkerProcesses | undefined;
  let stopHandoffs: (() => void) | undefined;
  const shutdown = async () => {
    await app?.close();
    stopHandoffs?.();
    await children?.stop();
    await worker?.stop({ graceMs: config.shutdownGraceMs });
    if (heartbeat) {
      const released = await heartbeat.stop().catch((caught: unknown) => {
        logger.warn({ err: toError(caught) }, 'could not release the leases on shutdown');
        return 0;
      });
      if (released > 0) logger.info({ released }, 'released unfinished events');
    }
    await maintenance?.stop();
    await sender.close();
    if (workerDb && workerDb !== db) await workerDb.close();
    await db.close();
  };

  try {
    if (runsWorker) {
      workerDb = await openWorkerDb(db, config.databaseUrl);
      worker = new Worker({
        db: workerDb,
        clock,
        sender,
        logger: logger.child({ component: 'worker' }),
        batchSize: config.workerBatchSize,
        concurrency: config.workerConcurrency,
        leaseMs: config.leaseMs,
        pollIntervalMs: config.pollIntervalMs,
        requestTimeoutMs: config.requestTimeoutMs,
      });
      // Registered before the first claim, so every lease it takes has a live owner.
      heartbeat = new Heartbeat(
        db,
        worker.id,
        config.heartbeatMs,
        logger.child({ component: 'heartbeat' }),
      );
      await heartbeat.start();
      await worker.start();
      if (process.connected) stopHandoffs = serveParentHandoffs(worker);
    }
    if (childWorkers > 0) {
      children = new WorkerProcesses(childWorkers, logger);
      children.start();
    }
    if (runsMaintenance) {
      maintenance = new Maintenance({
        db,
        clock,
        logger: logger.child({ component: 'maintenance' }),
        sender,
        heartbeatMs: config.heartbeatMs,
        intervalMs: config.maintenanceIntervalMs,
        retentionDays: config.retentionDays,
        autoDisableDays: config.autoDisableDays,
        callbackTimeoutMs: config.requestTimeoutMs,
      });
      maintenance.start();
    }
    if (runsApi) {
      // Published events go straight to the worker beside the API when it has room.
      const local = worker;
      const handoff = local
        ? new HandoffCredit(
            () => local.handoffReport(),
            (events, lease) => local.accept(events, lease),
          )
        : children;
      app = buildApp({ db, clock, config, sender, handoff }, logger.child({ component: 'api' }));
      const address = await app.listen({ port: config.port, host: config.host });
      // Only once the API is up: a start that fails (its port taken) prints no token
      // that the next start, finding a user, would not print again.
      const key = await createFirstAdmin(db);
      if (key) {
        // Printed, not logged: the key must not end up in log storage.
        process.stdout.write(
          `\nCreated the admin user "admin". Its API token, shown only this once:\n\n    ${key}\n\n` +
            `Use it as: Authorization: Token ${key.slice(0, 4)}…\n\n`,
        );
      }
      logger.info(
        { address, database: db.kind, role: config.role, workerProcesses: childWorkers },
        'oms-hooks is listening',
      );
    } else {
      logger.info(
        { database: db.kind, role: config.role, worker: worker?.id },
        'oms-hooks is running',
      );
    }
  } catch (error) {
    await shutdown().catch(() => {});
    throw error;
  }

  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      logger.info({ signal }, 'shutting down');
      resolve();
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
    // a worker process started by `serve --role all` goes when its parent does, however
    // the parent ended
    if (process.connected) process.once('disconnect', () => stop('parent gone'));
  });
  await shutdown();
  // the channel to a parent would keep this process alive
  if (process.connected) process.disconnect();
  logger.info('stopped');
  return 0;
}
