import { spawn, type ChildProcess } from 'node:child_process';
import { availableParallelism } from 'node:os';
import type { Logger } from 'pino';
import type { Config } from '../config/config.js';
import type { Worker } from '../delivery/worker.js';
import {
  HandoffCredit,
  type HandedLease,
  type Handoff,
  type HandoffMessage,
  type HandoffOffer,
  type HandoffReport,
} from '../queue/handoff.js';
import type { ClaimedEvent } from '../queue/claim.js';
import { HEAP_GROWS_BY_HALF } from './heap.js';

/** How long a worker process that exited waits before it is started again. */
const RESTART_DELAY_MS = 1_000;

/** How often a worker process tells its parent what it would take from publishes. */
const REPORT_INTERVAL_MS = 10;

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

/**
 * V8 flags a worker process starts with, before the parent's own (the last of a flag
 * wins). A worker allocates about a kilobyte per event that lives until the event is
 * recorded, long enough to reach the old generation, where V8 let it pile up to three or
 * four times the live heap before a full collection: in a drain of 400,000 events at
 * about 12,000/s its old space swung between 23-36 MB live and 92-111 MB. Growing the
 * heap by half of what survives a collection instead held the process at 135-137 MB
 * at its peak against 164-186 MB (two alternated pairs), for 62-64 µs of its CPU per
 * event against 59-60.
 */
export const WORKER_NODE_FLAGS: readonly string[] = [HEAP_GROWS_BY_HALF];

/** A worker process's node flags: WORKER_NODE_FLAGS, then this process's own. */
export function workerNodeArgs(execArgv: readonly string[]): string[] {
  return [...WORKER_NODE_FLAGS, ...execArgv];
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
 *
 * The same channel carries hand-offs (see Handoff): each child reports what it would
 * take, and this process's publishes lease fresh events to the child with the most room
 * and send them over.
 */
export class WorkerProcesses implements Handoff {
  private readonly children = new Set<ChildProcess>();
  private readonly credits = new Map<ChildProcess, HandoffCredit>();
  private readonly offers = new WeakMap<HandoffOffer, HandoffCredit>();
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
      [...workerNodeArgs(process.execArgv), process.argv[1]!, ...workerArgs(process.argv.slice(2))],
      {
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        env: process.env,
        // events carry JSON text: V8's serializer passes strings without escaping them
        serialization: 'advanced',
      },
    );
    this.children.add(child);
    let report: HandoffReport | undefined;
    child.on('message', (message: HandoffMessage) => {
      if (message.type === 'handoff-report') report = message.report;
    });
    this.credits.set(
      child,
      new HandoffCredit(
        () => report,
        (events, lease) => {
          if (!child.connected) return;
          // Without a callback, a send that fails (the child just died: EPIPE) is an
          // 'error' event, which with no listener would end this process too. The
          // events stay leased to the child's worker, and maintenance's rescue takes
          // them back once its heartbeat has stopped.
          child.send({ type: 'handoff', events, lease }, (error) => {
            if (error) {
              this.logger.warn(
                { child: child.pid, err: error, events: events.length },
                'could not hand events to a worker process; its lease will be rescued',
              );
            }
          });
        },
      ),
    );
    this.logger.info({ child: child.pid }, 'worker process started');
    // a child that could not be started, or signalled: its 'exit', if any, restarts it
    child.on('error', (error) => {
      this.logger.error({ child: child.pid, err: error }, 'worker process error');
    });
    child.once('exit', (code, signal) => {
      this.children.delete(child);
      this.credits.delete(child);
      if (this.stopping) return;
      this.logger.error({ child: child.pid, code, signal }, 'worker process exited; restarting it');
      setTimeout(() => {
        if (!this.stopping) this.spawnOne();
      }, RESTART_DELAY_MS).unref();
    });
  }

  offer(wanted: number): HandoffOffer | undefined {
    let best: HandoffCredit | undefined;
    let most = 0;
    for (const credit of this.credits.values()) {
      const room = credit.available();
      if (room > most) [best, most] = [credit, room];
    }
    const offer = best?.offer(wanted);
    if (offer) this.offers.set(offer, best!);
    return offer;
  }

  settle(offer: HandoffOffer, events: ClaimedEvent[], lease: HandedLease): void {
    this.offers.get(offer)?.settle(offer, events, lease);
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

/** The side of the IPC channel a worker process holds: `process` itself. */
export interface ParentChannel {
  readonly connected: boolean;
  send?(message: HandoffMessage, callback: (error: Error | null) => void): boolean;
  on(event: 'message', listener: (message: HandoffMessage) => void): unknown;
  off(event: 'message', listener: (message: HandoffMessage) => void): unknown;
}

/**
 * In a worker process started by WorkerProcesses: takes the events the parent hands
 * over, and reports to it what this worker would take, whenever that changed. Returns
 * the function that stops the reports.
 */
export function serveParentHandoffs(
  worker: Pick<Worker, 'accept' | 'handoffReport'>,
  parent: ParentChannel = process,
): () => void {
  const onMessage = (message: HandoffMessage) => {
    if (message.type === 'handoff') worker.accept(message.events, message.lease);
  };
  parent.on('message', onMessage);
  let last = '';
  const timer = setInterval(() => {
    if (!parent.connected) return;
    const report = worker.handoffReport();
    const key = `${report.room} ${report.accepted} ${report.full.join(',')}`;
    if (key === last) return;
    last = key;
    // A parent killed outright leaves the channel looking connected until its close is
    // read; a send meanwhile fails with EPIPE. Without a callback that failure is an
    // 'error' event on `process`, uncaught, and this process would die before its
    // shutdown gave its leases back. The 'disconnect' that follows stops it instead.
    parent.send?.({ type: 'handoff-report', report }, () => {});
  }, REPORT_INTERVAL_MS);
  timer.unref();
  return () => {
    clearInterval(timer);
    parent.off('message', onMessage);
  };
}
