import { isoMicro, type Clock } from '../core/clock.js';
import type { Db } from '../store/db.js';
import { enqueueHookEvents, type NewHookEvent } from './enqueue.js';

interface Waiting {
  events: NewHookEvent[];
  resolve: () => void;
  reject: (error: unknown) => void;
}

/**
 * Group commit for publishing. Events from concurrent requests are gathered and written
 * in one transaction (one multi-row insert, one NOTIFY); every caller is answered only
 * after that commit, so an accepted event is still never lost. Under load the gathering
 * happens by itself: while `maxFlushes` transactions are in flight, new events wait for
 * the next one instead of each paying for a commit of its own.
 */
export class GroupCommit {
  private waiting: Waiting[] = [];
  private flushes = 0;
  private scheduled = false;

  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    private readonly options: { maxBatch: number; maxFlushes: number } = {
      maxBatch: 1000,
      maxFlushes: 4,
    },
  ) {}

  enqueue(events: NewHookEvent[]): Promise<void> {
    if (events.length === 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.waiting.push({ events, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled || this.waiting.length === 0 || this.flushes >= this.options.maxFlushes)
      return;
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
    if (batch.length === 0) return;
    this.flushes++;
    try {
      await this.write(batch.flatMap((w) => w.events));
      for (const w of batch) w.resolve();
    } catch (error) {
      // One bad request (its webhook deleted a moment ago, say) must not fail the
      // others gathered with it: alone, each succeeds or fails on its own.
      if (batch.length === 1) batch[0]!.reject(error);
      else {
        await Promise.all(batch.map((w) => this.write(w.events).then(w.resolve, w.reject)));
      }
    } finally {
      this.flushes--;
      this.schedule();
    }
  }

  private write(events: NewHookEvent[]): Promise<void> {
    return this.db.transaction((tx) => enqueueHookEvents(tx, events, isoMicro(this.clock.now())));
  }
}
