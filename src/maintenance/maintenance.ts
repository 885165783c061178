import type { Logger } from 'pino';
import { isoMicro, type Clock } from '../core/clock.js';
import { toError } from '../core/errors.js';
import type { Sender } from '../delivery/sender.js';
import type { Db } from '../store/db.js';
import { disableFailingWebhooks, notifyDisabled } from './auto-disable.js';
import { foldEventCounts } from './counts.js';
import { DEAD_AFTER_BEATS } from './heartbeat.js';
import { rescueLeases } from './rescue.js';
import { purgeOldEvents } from './retention.js';
import {
  CHURNED_TABLES,
  freezeAged,
  vacuumChurned,
  type ChurnedTable,
  type FreezeAges,
  type Vacuumed,
} from './vacuum.js';

export interface MaintenanceOptions {
  db: Db;
  clock: Clock;
  logger: Logger;
  /** Sends the disable callbacks, through the SSRF guard. */
  sender: Sender;
  /** The workers' heartbeat period; leases are checked, and the queue vacuumed, as often. */
  heartbeatMs: number;
  /** How often retention, auto-disable and vacuum run. */
  intervalMs: number;
  /** 0 keeps events forever. */
  retentionDays: number;
  /** 0 never deactivates. */
  autoDisableDays: number;
  callbackTimeoutMs: number;
  retentionBatchSize?: number;
  retentionPauseMs?: number;
  /** Lower limits of age for freezeAged than the server's own (tests). */
  freezeAges?: FreezeAges;
}

export interface MaintenanceReport {
  rescued: { workers: string[]; released: number } | undefined;
  /** Rows of hook_event_counts folded into one per key. */
  folded: number;
  purged: number;
  disabled: number[];
  vacuumed: Vacuumed[];
}

const DAY_MS = 86_400_000;

/**
 * The queue, vacuumed every heartbeat as well as with the other tables. Every event
 * leaves a dead row there, and on PGlite a VACUUM holds the only database thread while
 * it lasts: once a minute it found a minute's worth (120,000 dead rows at 2,000
 * events/s), and a full run of the bench logged 240 ms for 198,092, during which the
 * database answered nothing else. The queue's live rows are usually few, so its VACUUM
 * costs about what it removes: every heartbeat, a heartbeat's worth. With a backlog
 * they are many, and each VACUUM's pass over the queue's indexes reads every entry:
 * draining a million on PGlite, each took 107-670 ms (the bench on 2026-12-05), and the
 * share of dead rows vacuum.ts asks for spaced them 4-19 s apart. The event counts and
 * the block summaries are vacuumed as often, since each heartbeat's fold deletes what
 * publishes wrote since the last (counts.ts).
 */
const EVERY_HEARTBEAT: readonly ChurnedTable[] = [
  'hook_event_queue',
  'hook_event_counts',
  'hook_event_blocks',
  'hook_event_key_blocks',
];

/**
 * The maintenance role: rescues the leases of dead workers, folds the event counts and
 * vacuums the queue every heartbeat, and every interval purges old events, deactivates
 * webhooks that only fail, and vacuums the churned tables where no autovacuum does.
 * Each job runs under the maintenance advisory lock (a VACUUM, which cannot run in a
 * transaction, passes over a table another is vacuuming), so any number of maintenance
 * processes can run. Failures (the database away) are logged and the job is tried again
 * on its next turn.
 */
export class Maintenance {
  private running = false;
  private loops: Promise<void>[] = [];
  private wakers = new Set<() => void>();

  constructor(private readonly o: MaintenanceOptions) {}

  async rescue(): Promise<MaintenanceReport['rescued']> {
    const rescued = await rescueLeases(this.o.db, this.o.heartbeatMs * DEAD_AFTER_BEATS);
    if (rescued && rescued.workers.length > 0) {
      this.o.logger.warn(rescued, 'released the leases of workers that stopped reporting');
    }
    return rescued;
  }

  async purge(keepGoing: () => boolean = () => true): Promise<number> {
    if (this.o.retentionDays === 0) return 0;
    const purged = await purgeOldEvents(this.o.db, {
      before: isoMicro(this.o.clock.now() - this.o.retentionDays * DAY_MS),
      batchSize: this.o.retentionBatchSize ?? 1_000,
      pauseMs: this.o.retentionPauseMs ?? 50,
      keepGoing,
    });
    if (purged > 0) this.o.logger.info({ purged }, 'purged old hook events');
    return purged;
  }

  async autoDisable(): Promise<number[]> {
    if (this.o.autoDisableDays === 0) return [];
    const now = this.o.clock.now();
    const disabled = await disableFailingWebhooks(
      this.o.db,
      isoMicro(now - this.o.autoDisableDays * DAY_MS),
      isoMicro(now),
    );
    for (const webhook of disabled) {
      this.o.logger.warn(
        { webhook: webhook.id, failingSince: webhook.since },
        'deactivated a webhook whose deliveries all fail',
      );
    }
    await Promise.all(
      disabled.map((w) =>
        notifyDisabled(
          this.o.sender,
          w,
          this.o.autoDisableDays,
          this.o.callbackTimeoutMs,
          this.o.logger,
        ),
      ),
    );
    return disabled.map((w) => w.id);
  }

  /**
   * VACUUMs the tables delivery churns, where no autovacuum does (see vacuum.ts), or those
   * of `tables`, and logs each at `level`.
   */
  async vacuum(
    tables: readonly ChurnedTable[] = CHURNED_TABLES,
    level: 'info' | 'debug' = 'info',
  ): Promise<Vacuumed[]> {
    return this.logged(await vacuumChurned(this.o.db, tables), level);
  }

  /** On PGlite, freezes the tables whose rows' transaction ids have grown old (freezeAged). */
  async freeze(): Promise<Vacuumed[]> {
    return this.logged(await freezeAged(this.o.db, this.o.freezeAges), 'info');
  }

  private logged(vacuumed: Vacuumed[], level: 'info' | 'debug'): Vacuumed[] {
    for (const v of vacuumed) this.o.logger[level](v, 'vacuumed a table');
    return vacuumed;
  }

  /** Every job once, in order (for tests and one-off runs). */
  async runOnce(): Promise<MaintenanceReport> {
    return {
      rescued: await this.rescue(),
      folded: await foldEventCounts(this.o.db),
      purged: await this.purge(),
      disabled: await this.autoDisable(),
      vacuumed: [...(await this.vacuum()), ...(await this.freeze())],
    };
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loops = [
      this.every(this.o.heartbeatMs, 'lease rescue, counts and queue vacuum', async () => {
        await this.rescue();
        if (this.running) await foldEventCounts(this.o.db);
        // at debug: it comes every heartbeat
        if (this.running) await this.vacuum(EVERY_HEARTBEAT, 'debug');
      }),
      this.every(this.o.intervalMs, 'retention, auto-disable, vacuum and freezing', async () => {
        await this.purge(() => this.running);
        if (this.running) await this.autoDisable();
        if (this.running) await this.vacuum();
        if (this.running) await this.freeze();
      }),
    ];
  }

  /** Stops both loops, waiting for the job in progress (a purge stops between batches). */
  async stop(): Promise<void> {
    this.running = false;
    for (const wake of this.wakers) wake();
    await Promise.all(this.loops);
  }

  private async every(ms: number, job: string, fn: () => Promise<unknown>): Promise<void> {
    let failing = false;
    while (this.running) {
      try {
        await fn();
        failing = false;
      } catch (caught) {
        if (!failing) this.o.logger.warn({ err: toError(caught), job }, 'maintenance job failed');
        failing = true;
      }
      if (!this.running) break;
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          this.wakers.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, ms);
        this.wakers.add(wake);
      });
    }
  }
}
