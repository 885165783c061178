import type { Clock } from './clock.js';

export interface TtlCacheOptions {
  /** How long an entry is served after it was loaded; 0 turns the cache off. */
  ttlMs: number;
  /** Entries kept at most; the one loaded longest ago goes first. */
  maxSize: number;
}

interface Entry<V> {
  value: V;
  expiresAt: number;
}

/**
 * A small map whose entries expire `ttlMs` after they were loaded, for lookups that may
 * be a moment stale. Time comes from the injected Clock, so tests move a ManualClock.
 *
 * Entries sit in the Map in load order, which with one TTL is also expiry order: the
 * oldest entry is both the first to expire and the one evicted when the cache is full.
 *
 * `load` fetches a missing key once however many callers want it at the same moment (a
 * burst of requests all missing when an entry expires makes one query, not one each).
 * It also guards against a race with invalidation: a value read from the database before
 * a `delete` or `clear` (a webhook update committing while a publish was reading the
 * old row) is returned to the callers already waiting for it but neither stored nor
 * shared with later ones, so it cannot outlive the write.
 */
export class TtlCache<K, V> {
  private readonly entries = new Map<K, Entry<V>>();
  private readonly fetching = new Map<K, Promise<V | undefined>>();
  /** Bumped by every invalidation; a load that saw another generation does not store. */
  private generation = 0;

  constructor(
    private readonly clock: Clock,
    private readonly options: TtlCacheOptions,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  get(key: K): V | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt <= this.clock.now()) {
      this.entries.delete(key);
      return undefined;
    }
    return entry.value;
  }

  set(key: K, value: V): void {
    if (this.options.ttlMs <= 0 || this.options.maxSize <= 0) return;
    const now = this.clock.now();
    this.entries.delete(key); // re-inserted at the end: load order stays expiry order
    for (const [oldest, entry] of this.entries) {
      if (entry.expiresAt > now && this.entries.size < this.options.maxSize) break;
      this.entries.delete(oldest);
    }
    this.entries.set(key, { value, expiresAt: now + this.options.ttlMs });
  }

  /**
   * The cached value, else `fetch()`'s, stored unless it is undefined (a miss is not
   * remembered) or an invalidation happened while it was being fetched.
   */
  async load(key: K, fetch: () => Promise<V | undefined>): Promise<V | undefined> {
    const cached = this.get(key);
    if (cached !== undefined) return cached;
    const pending = this.fetching.get(key);
    if (pending) return pending;
    const generation = this.generation;
    const fetched = fetch().then(
      (value) => {
        if (this.fetching.get(key) === fetched) this.fetching.delete(key);
        if (value !== undefined && generation === this.generation) this.set(key, value);
        return value;
      },
      (error: unknown) => {
        if (this.fetching.get(key) === fetched) this.fetching.delete(key);
        throw error;
      },
    );
    this.fetching.set(key, fetched);
    return fetched;
  }

  delete(key: K): void {
    this.generation++;
    this.entries.delete(key);
    this.fetching.delete(key);
  }

  clear(): void {
    this.generation++;
    this.entries.clear();
    this.fetching.clear();
  }
}
