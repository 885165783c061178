/**
 * How many requests to one webhook a worker keeps in flight: a window that the
 * webhook's target opens by answering and closes by letting requests time out, as TCP
 * opens and closes its congestion window.
 *
 * - A webhook starts with `start` slots (at most its share).
 * - Each answer, whatever its status, opens the window by one, up to the share: a target
 *   that answers promptly doubles its window with each round of requests.
 * - Each request that timed out halves it, down to one slot: a target that hangs soon
 *   holds one slot for as long as it hangs, however many of its events are due.
 *
 * Before this, every webhook could hold its whole share (half the slots) at once, so two
 * targets that hung took every slot until their requests timed out, and took them again
 * at once: healthy webhooks beside them got 100 deliveries/s instead of about 5,800
 * (`bench/isolation-probe.ts 1 2000 2`). Slow answers do not close the window: a target
 * that takes its time but answers keeps its share. But a webhook whose last attempt
 * timed out or took `SLOW_ANSWER_MS` or more is `slow`, and the worker lets its slow
 * webhooks together hold at most half its slots, so that several slow targets cannot
 * take them all either.
 *
 * Windows live in the worker's memory. The most recently changed `remembered` of them
 * are kept; a webhook forgotten starts again at `start`.
 */
export class SlotWindows {
  private readonly windows = new Map<number, number>();
  /** Webhooks whose window timeouts have closed below `start`. */
  private readonly below = new Set<number>();
  /** Webhooks whose last attempt timed out or was answered slowly, the latest last. */
  private readonly slowOnes = new Set<number>();
  readonly start: number;

  constructor(
    readonly share: number,
    start = SLOT_WINDOW_START,
    private readonly remembered = 10_000,
  ) {
    this.start = Math.max(1, Math.min(share, start));
  }

  /** The most requests to this webhook in flight at once, now. */
  of(webhookId: number): number {
    return this.windows.get(webhookId) ?? this.start;
  }

  /** Webhooks whose requests timed out and whose window is still below `start`. */
  throttled(): ReadonlySet<number> {
    return this.below;
  }

  /** Whether the webhook's last attempt timed out or was answered slowly. */
  slow(webhookId: number): boolean {
    return this.slowOnes.has(webhookId);
  }

  /** An attempt got an answer after `durationMs`: one slot more, up to the share. */
  answered(webhookId: number, durationMs: number): void {
    const window = this.of(webhookId);
    if (window < this.share) this.set(webhookId, window + 1);
    if (durationMs >= SLOW_ANSWER_MS) this.markSlow(webhookId);
    else this.slowOnes.delete(webhookId);
  }

  /** An attempt timed out: half the slots, at least one. */
  timedOut(webhookId: number): void {
    this.set(webhookId, Math.max(1, Math.floor(this.of(webhookId) / 2)));
    this.markSlow(webhookId);
  }

  private markSlow(webhookId: number): void {
    this.slowOnes.delete(webhookId);
    this.slowOnes.add(webhookId);
    if (this.slowOnes.size > this.remembered) {
      const oldest = this.slowOnes.values().next().value;
      if (oldest !== undefined) this.slowOnes.delete(oldest);
    }
  }

  private set(webhookId: number, window: number): void {
    // re-inserted, so that the Map's first entry is the one changed longest ago
    this.windows.delete(webhookId);
    this.windows.set(webhookId, window);
    if (window < this.start) this.below.add(webhookId);
    else this.below.delete(webhookId);
    if (this.windows.size > this.remembered) {
      const oldest = this.windows.keys().next().value;
      if (oldest !== undefined) {
        this.windows.delete(oldest);
        this.below.delete(oldest);
      }
    }
  }
}

/** A webhook's first window: TCP starts its congestion window at a few segments too. */
export const SLOT_WINDOW_START = 4;

/** An answer that took this long (ms) makes its webhook slow (see SlotWindows). */
export const SLOW_ANSWER_MS = 1_000;
