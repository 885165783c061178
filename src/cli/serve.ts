import type { Logger } from 'pino';
import { buildApp } from '../api/app.js';
import type { Clock } from '../core/clock.js';
import type { Config } from '../config/config.js';
import { Sender } from '../delivery/sender.js';
import { Worker } from '../delivery/worker.js';
import { migrate } from '../store/migrate.js';
import { openDb } from '../store/open.js';
import { countUsers, createToken, ensureUser } from '../store/tokens.js';

/**
 * Runs the roles this process was given (API and worker by default) until SIGTERM or
 * SIGINT, then stops claiming, lets in-flight attempts finish and closes the database.
 */
export async function serve(config: Config, logger: Logger, clock: Clock): Promise<number> {
  const db = await openDb(config);
  const { applied } = await migrate(db);
  if (applied.length) logger.info({ applied }, 'migrations applied');

  if ((await countUsers(db)) === 0) {
    const admin = await ensureUser(db, 'admin', true);
    const { key } = await createToken(db, admin.id, 'first start');
    // Printed, not logged: the key must not end up in log storage.
    process.stdout.write(
      `\nCreated the admin user "admin". Its API token, shown only this once:\n\n    ${key}\n\n` +
        `Use it as: Authorization: Token ${key.slice(0, 4)}…\n\n`,
    );
  }

  const sender = new Sender({ responseCapBytes: config.responseCapBytes });
  const runsApi = config.role === 'all' || config.role === 'api';
  const runsWorker = config.role === 'all' || config.role === 'worker';
  let worker: Worker | undefined;
  let app: ReturnType<typeof buildApp> | undefined;
  const shutdown = async () => {
    await app?.close();
    await worker?.stop();
    await sender.close();
    await db.close();
  };

  try {
    if (runsWorker) {
      worker = new Worker({
        db,
        clock,
        sender,
        logger: logger.child({ component: 'worker' }),
        batchSize: config.workerBatchSize,
        concurrency: config.workerConcurrency,
        leaseMs: config.leaseMs,
        pollIntervalMs: config.pollIntervalMs,
        requestTimeoutMs: config.requestTimeoutMs,
      });
      await worker.start();
    }
    if (runsApi) {
      app = buildApp({ db, clock, config, sender }, logger.child({ component: 'api' }));
      const address = await app.listen({ port: config.port, host: config.host });
      logger.info({ address, database: db.kind, role: config.role }, 'oms-hooks is listening');
    } else {
      logger.info({ database: db.kind, role: config.role }, 'oms-hooks is running');
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
  });
  await shutdown();
  return 0;
}
