import { isoMicro, type Clock } from '../core/clock.js';
import type { ClaimedEvent } from './claim.js';
import type { Db } from '../store/db.js';
import { enqueueCommitted, type NewHookEvent } from './enqueue.js';
import type { Handoff } from './handoff.js';

interface Waiting {
  events: NewHookEvent[];
  /** Its payloads' size, held until it is answered. */
  bytes: number;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/**
 * Refused at once, nothing written: the publishes accepted and not yet committed already
 * hold `limit` bytes of payload (see GroupCommitOptions.heldBytesLimit).
 */
export class PublishBufferFull extends Error {
  override name = 'PublishBufferFull';
  constructor(
    readonly heldBytes: number,
    readonly limit: number,
  ) {
    super(`${heldBytes} bytes of payload are waiting to be written (limit ${limit})`);
  }
}

/** What an event holds in memory until its write ends, near enough: its payload's text. */
const sizeOf = (events: NewHookEvent[]): number => {
  let bytes = 0;
  for (const e of events) bytes += e.requestPayload.length;
  return bytes;
};

/**
 * An error one event can cause by its content alone, so that the others gathered with it
 * would be written without it: a data exception (class 22: JSON the server refuses, like
 * a \u0000 in a string) or an integrity violation (class 23: its webhook deleted a
 * moment ago). Anything else (the database unreachable, a timeout) would fail them all
 * alike, and is answered to all at once rather than retried event by event.
 */
const causedByOneEvent = (error: unknown): boolean => {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^2[23][0-9A-Z]{3}$/.test(code);
};

export interface GroupCommitOptions {
  /** Events written by one statement at most (a request's events are never split). */
  maxBatch: number;
  /** Writes in flight at once, each holding one pooled connection. */
  maxFlushes: number;
  /**
   * Events a write needs to start beside one in flight that carries at least as many
   * (see PGLITE_GROUP_COMMIT).
   */
  minBeside: number;
  /**
   * Payload bytes that requests waiting for their write, or in one, may hold at most;
   * beyond it a request is refused with PublishBufferFull instead of waiting (one alone
   * is always taken). Unset or 0: no limit.
   */
  heldBytesLimit?: number;
}

/**
 * PostgreSQL: one write at a time. A second write in flight was meant to run while the
 * first waits for its WAL flush, but on two cores already busy with the API, the worker
 * and the receiver there is nothing for it to overlap with: it only cut the same stream
 * into smaller statements, each paying its start, its statement-level triggers and its
 * commit. Alternated on this machine (2026-12-03), one write against two: publishing
 * with the API alone 8,473, 7,199 and 8,735/s against 7,405, 7,658 and 7,861/s, and
 * PostgreSQL's CPU 41-46 µs per event against 58-60; while delivering, 3,944, 3,805 and
 * 4,272/s against 3,776, 3,854 and 3,067/s; at 2,000/s, 0.27-0.29 commits per event
 * against 0.32-0.33 and publish-to-arrival p50 3.2-3.7 ms against 3.7-4.1, p99 30-40 ms
 * against 31-35. A statement of 500 events of a few KiB keeps the wait of the requests
 * it answers to tens of milliseconds.
 */
export const GROUP_COMMIT_DEFAULTS: GroupCommitOptions = Object.freeze({
  maxBatch: 500,
  maxFlushes: 1,
  minBeside: 1,
});

/**
 * PGlite: two writes in flight, the second only when worth it. PGlite runs one
 * statement at a time, in one thread: a second write in flight never runs beside the
 * first, it waits behind it, and a small one pays a whole statement for little (on a
 * data directory on disk, an enqueue of one event cost 570-620 µs, one of 32 events
 * 71-83 µs per event). Started at once, the second write took whatever had arrived
 * since the first: under a closed loop of 64 publishers, a quarter of the writes
 * carried three events or fewer, and the mean was 19. So beside a write of 32 events or
 * more, which holds the database thread for a few milliseconds, a second one starts
 * only with 32 events of its own; fewer wait for the write in flight to end, about when
 * the database thread would have reached them anyway (the mean rose to 23, and the
 * writes of three events or fewer fell to a fifth). Beside a small write, one that ends
 * soon, the next starts at once as before: at a few thousand publishes a second,
 * waiting would only let the worker's statements, sent meanwhile, go ahead of it. One
 * write at a time, as on PostgreSQL, read 3,029 and 2,948 publishes/s while delivering
 * against 3,727 and 2,768/s (2026-12-03, alternated), with the same CPU per event:
 * nothing to gain.
 */
export const PGLITE_GROUP_COMMIT: GroupCommitOptions = Object.freeze({
  ...GROUP_COMMIT_DEFAULTS,
  maxFlushes: 2,
  minBeside: 32,
});

/**
 * Group commit for publishing. Events from concurrent requests are gathered and written
 * in one statement (one multi-row insert and one NOTIFY, its own transaction: a single
 * round trip); every caller is answered only after that commit, so an accepted event is
 * still never lost. Under load the gathering happens by itself: while `maxFlushes`
 * writes are in flight, new events wait for the next one instead of each paying for a
 * commit of its own.
 *
 * With a hand-off, each statement leases as many of its events as the worker beside
 * this process has room for, and passes them to it after the commit (see Handoff).
 */
export class GroupCommit {
  private waiting: Waiting[] = [];
  /** The events of `waiting`, counted. */
  private waitingEvents = 0;
  private flushes = 0;
  /** The events of the write started last. */
  private lastSize = 0;
  private scheduled = false;
  /** Payload bytes of the requests not yet answered, waiting or being written. */
  private heldBytes = 0;

  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    private readonly options: GroupCommitOptions = GROUP_COMMIT_DEFAULTS,
    /** A worker beside this process that takes fresh events without claiming them. */
    private readonly handoff?: { to: Handoff; leaseMs: number },
  ) {}

  /**
   * Resolves once the events are committed. Rejects with PublishBufferFull, at once and
   * with nothing written, when the requests not yet answered hold the limit already:
   * the database is behind (slow, stalled, or failing over) and waiting would only grow
   * the process's memory and every caller's wait.
   */
  enqueue(events: NewHookEvent[]): Promise<void> {
    if (events.length === 0) return Promise.resolve();
    const bytes = sizeOf(events);
    const limit = this.options.heldBytesLimit ?? 0;
    if (limit > 0 && this.heldBytes > 0 && this.heldBytes + bytes > limit)
      return Promise.reject(new PublishBufferFull(this.heldBytes, limit));
    this.heldBytes += bytes;
    return new Promise<void>((resolve, reject) => {
      this.waiting.push({ events, bytes, resolve, reject });
      this.waitingEvents += events.length;
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled || this.waiting.length === 0 || this.flushes >= this.options.maxFlushes)
      return;
    const { minBeside } = this.options;
    // the large write in flight schedules the next one when it ends
    if (this.flushes > 0 && this.lastSize >= minBeside && this.waitingEvents < minBeside) return;
    this.scheduled = true;
    // Let the requests that arrived in this turn of the event loop join the batch.
    setImmediate(() => {
      this.scheduled = false;
      void this.flush();
    });
  }

  private async flush(): Promise<void> {
    if (this.flushes >= this.options.maxFlushes) return;
    const batch: Waiting[] = [];
    let size = 0;
    while (
      this.waiting.length > 0 &&
      (batch.length === 0 || size + this.waiting[0]!.events.length <= this.options.maxBatch)
    ) {
      const next = this.waiting.shift()!;
      batch.push(next);
      size += next.events.length;
    }
    this.waitingEvents -= size;
    if (batch.length === 0) return;
    this.lastSize = size;
    this.flushes++;
    try {
      await this.writeApart(batch);
    } finally {
      this.flushes--;
      this.schedule();
    }
  }

  /**
   * Writes a batch and answers its callers. One bad request (its webhook deleted a
   * moment ago, say) must not fail the others gathered with it: a batch failed by one
   * event's content is halved, and each half written in turn, until the requests that
   * fail stand alone. One bad request among n costs about 2·log2(n) more statements,
   * one after the other on this write's connection, not n at once on the shared pool.
   */
  private async writeApart(batch: Waiting[]): Promise<void> {
    try {
      await this.write(batch.flatMap((w) => w.events));
      for (const w of batch) this.answer(w).resolve();
    } catch (error) {
      if (batch.length === 1 || !causedByOneEvent(error)) {
        for (const w of batch) this.answer(w).reject(error);
        return;
      }
      const half = Math.ceil(batch.length / 2);
      await this.writeApart(batch.slice(0, half));
      await this.writeApart(batch.slice(half));
    }
  }

  /** Lets go of what a request held, as it is answered. */
  private answer(w: Waiting): Waiting {
    this.heldBytes -= w.bytes;
    return w;
  }

  /** One statement; what it leased to the hand-off's worker goes to it after the commit. */
  private async write(events: NewHookEvent[]): Promise<void> {
    const now = this.clock.now();
    if (!this.handoff) {
      await enqueueCommitted(this.db, events, isoMicro(now));
      return;
    }
    const { to, leaseMs } = this.handoff;
    const offer = to.offer(events.length);
    let handed: ClaimedEvent[] = [];
    try {
      handed = await enqueueCommitted(this.db, events, isoMicro(now), offer && { offer, leaseMs });
    } finally {
      if (offer) to.settle(offer, handed, { readAt: now, until: now + leaseMs });
    }
  }
}
