import { spawn, type ChildProcess } from 'node:child_process';
import { availableParallelism } from 'node:os';
import type { Logger } from 'pino';
import type { Config } from '../config/config.js';

/** How long a worker process that exited waits before it is started again. */
const RESTART_DELAY_MS = 1_000;

/**
 * How many worker processes `serve --role all` starts beside itself. One Node process
 * runs on one core: with the API, the deliveries and PostgreSQL on the same machine,
 * deliveries in a process of their own let the API and the worker each have a core.
 * PGlite cannot be shared between processes, so with it the answer is always 0.
 */
export function workerProcessCount(config: Config): number {
  if (config.role !== 'all' || !config.databaseUrl) return 0;
  if (config.workerProcesses !== 'auto') return config.workerProcesses;
  return availableParallelism() >= 2 ? 1 : 0;
}

/** This process's command line with `--role worker` in place of any role it had. */
export function workerArgs(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--role') i++;
    else if (!arg.startsWith('--role=')) out.push(arg);
  }
  return [...out, '--role', 'worker'];
}

/**
 * Worker processes started by a `serve --role all` process, with its own node flags,
 * command line and environment. One that exits is started again after a second. Each
 * child has an IPC channel to this process and shuts down gracefully when it closes,
 * so a parent killed outright (kill -9) leaves no worker behind.
 */
export class WorkerProcesses {
  private readonly children = new Set<ChildProcess>();
  private stopping = false;

  constructor(
    private readonly count: number,
    private readonly logger: Logger,
  ) {}

  start(): void {
    for (let i = 0; i < this.count; i++) this.spawnOne();
  }

  private spawnOne(): void {
    const child = spawn(
      process.execPath,
      [...process.execArgv, process.argv[1]!, ...workerArgs(process.argv.slice(2))],
      { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env: process.env },
    );
    this.children.add(child);
    this.logger.info({ child: child.pid }, 'worker process started');
    child.once('exit', (code, signal) => {
      this.children.delete(child);
      if (this.stopping) return;
      this.logger.error({ child: child.pid, code, signal }, 'worker process exited; restarting it');
      setTimeout(() => {
        if (!this.stopping) this.spawnOne();
      }, RESTART_DELAY_MS).unref();
    });
  }

  /** Asks every worker process to shut down (SIGTERM) and waits until they have. */
  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(
      [...this.children].map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            child.once('exit', () => resolve());
            child.kill('SIGTERM');
          }),
      ),
    );
  }
}
