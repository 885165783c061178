import type { Logger } from 'pino';
import { toError } from '../core/errors.js';
import type { Queryable } from '../store/db.js';

/**
 * A worker process's proof of life: its row in `workers`, refreshed every `intervalMs`.
 * Maintenance releases the leases of a worker unseen for DEAD_AFTER_BEATS periods, so
 * a killed worker's events go out again within seconds rather than after LEASE_MS.
 * Times are the database's `now()`, never this machine's clock.
 */
export const DEAD_AFTER_BEATS = 3;

export class Heartbeat {
  private timer: NodeJS.Timeout | undefined;
  private failing = false;
  private pending: Promise<void> = Promise.resolve();

  constructor(
    private readonly db: Queryable,
    readonly workerId: string,
    private readonly intervalMs: number,
    private readonly logger: Logger,
  ) {}

  /** Registers the worker (throws if the database refuses) and keeps beating until stop(). */
  async start(): Promise<void> {
    await this.beat();
    this.schedule();
  }

  private schedule(): void {
    this.timer = setTimeout(() => {
      this.pending = this.beatLogged().finally(() => {
        if (this.timer) this.schedule();
      });
    }, this.intervalMs);
  }

  // An upsert, not an update: if maintenance took this worker for dead while the
  // database was away, the row comes back with the next beat.
  private async beat(): Promise<void> {
    await this.db.query(
      `insert into workers (id) values ($1)
       on conflict (id) do update set last_seen = now()`,
      [this.workerId],
    );
  }

  private async beatLogged(): Promise<void> {
    try {
      await this.beat();
      if (this.failing) this.logger.info('heartbeat restored');
      this.failing = false;
    } catch (caught) {
      // Logged once per outage, not once per beat.
      if (!this.failing) this.logger.warn({ err: toError(caught) }, 'heartbeat failed');
      this.failing = true;
    }
  }

  /**
   * Stops beating and signs the worker off: whatever it still holds is released, so a
   * graceful shutdown leaves no event locked. Call it after the worker has stopped.
   */
  async stop(): Promise<number> {
    clearTimeout(this.timer);
    this.timer = undefined;
    // A beat landing after the sign-off would bring the row back.
    await this.pending;
    const { rows } = await this.db.query<{ released: number }>(
      `with gone as (delete from workers where id = $1),
       released as (
         update hook_event_queue set locked_by = null, locked_until = null
         where locked_by = $1 returning 1
       )
       select count(*)::int as released from released`,
      [this.workerId],
    );
    return rows[0]?.released ?? 0;
  }
}
