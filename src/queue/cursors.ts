import { isoMicro } from '../core/clock.js';
import type { ClaimedEvent, QueuePosition } from './claim.js';

export interface ClaimCursorOptions {
  /** How often the claims read each webhook's queue from its head again (clock ms). */
  resetMs: number;
  /** How far before the claim's time an event may be due and still be committed later. */
  marginMs: number;
}

/**
 * At about 50 claims a second in a drain, a read from the head every two seconds leaves
 * one claim in a hundred paying the old price. A second of margin is far more than a
 * publish takes from choosing its run_at to its commit (milliseconds).
 */
export const CLAIM_CURSOR_DEFAULTS: ClaimCursorOptions = Object.freeze({
  resetMs: 2_000,
  marginMs: 1_000,
});

/**
 * Where one worker's next claim starts reading each webhook's queue.
 *
 * A delivered event's queue row is deleted, but its index entry stays at the head of
 * its webhook's range in (webhook_id, run_at, hook_event_id) until a VACUUM removes
 * it: autovacuum looks at a table once a minute at most, and only once a fifth of it is
 * dead. A claim that reads the range from its head walks over all of those entries
 * first. In a drain of 1,000,000 events, the claim read 2,000 index pages 45 s in and
 * 4,500 at 75 s (5 to 19 ms per claim), and the queue's index scans took most of the
 * database's time. Started just after the last event this worker claimed, a claim
 * reads only what is still queued.
 *
 * What can appear behind that position, still due:
 * - an event published a moment before the last one claimed but committed after it
 *   (two publishes write at once). An event due less than `marginMs` before the claim
 *   is never passed over: the position is moved back to there.
 * - an event whose lease was given back or ran out (its worker died). This worker
 *   starts from the head again when it gives leases back (`reset`), and every
 *   `resetMs` for the others, so such an event waits that long at most.
 */
export class ClaimCursors {
  private readonly last = new Map<number, QueuePosition>();
  private since: number | undefined;

  constructor(private readonly o: ClaimCursorOptions = CLAIM_CURSOR_DEFAULTS) {}

  /** Where a claim made at `now` (clock ms) starts, per webhook; none at all every resetMs. */
  positions(now: number): ReadonlyMap<number, QueuePosition> {
    if (this.since === undefined || now - this.since >= this.o.resetMs) {
      this.last.clear();
      this.since = now;
      return new Map();
    }
    const recent = isoMicro(now - this.o.marginMs);
    const out = new Map<number, QueuePosition>();
    for (const [webhookId, at] of this.last) {
      out.set(webhookId, at.runAt < recent ? at : { runAt: recent, id: 0 });
    }
    return out;
  }

  /** Moves each webhook's position past the events a claim took. */
  advance(events: readonly ClaimedEvent[]): void {
    for (const { id, runAt, webhook } of events) {
      if (runAt === undefined) continue;
      const at = this.last.get(webhook.id);
      // both run_ats are written by oms_ts in one fixed-width format: text order is time order
      if (!at || runAt > at.runAt || (runAt === at.runAt && id > at.id)) {
        this.last.set(webhook.id, { runAt, id });
      }
    }
  }

  /** The next claim reads every webhook's queue from its head. */
  reset(): void {
    this.since = undefined;
  }
}
