import type { Clock } from '../core/clock.js';

/**
 * A token bucket per API token, in this process: `perSecond` requests a second on
 * average, bursts up to twice that. Several API processes each allow that much; the
 * limit is there to stop a runaway client, not to bill one.
 */
export class RateLimiter {
  private readonly buckets = new Map<number, { tokens: number; at: number }>();
  private readonly burst: number;

  constructor(
    private readonly perSecond: number,
    private readonly clock: Clock,
  ) {
    this.burst = perSecond * 2;
  }

  /** 0 when the request may go ahead, else the seconds to wait (Retry-After). */
  take(key: number): number {
    if (this.perSecond <= 0) return 0;
    const now = this.clock.now();
    const bucket = this.buckets.get(key) ?? { tokens: this.burst, at: now };
    bucket.tokens = Math.min(
      this.burst,
      bucket.tokens + (Math.max(0, now - bucket.at) / 1000) * this.perSecond,
    );
    bucket.at = now;
    this.buckets.set(key, bucket);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil((1 - bucket.tokens) / this.perSecond));
  }
}
