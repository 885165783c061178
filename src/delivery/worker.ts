import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { isoMicro, type Clock } from '../core/clock.js';
import { toError } from '../core/errors.js';
import { countdownSeconds } from '../core/retry.js';
import type { ClaimedEvent } from '../queue/claim.js';
import { claimDue } from '../queue/claim.js';
import { recordAttempts, type AttemptOutcome, type Next } from '../queue/record.js';
import { onDue } from '../queue/wake.js';
import type { Db } from '../store/db.js';
import { buildRequest } from './request.js';
import type { SendResult, Sender } from './sender.js';

export interface WorkerOptions {
  db: Db;
  clock: Clock;
  sender: Sender;
  logger: Logger;
  batchSize: number;
  concurrency: number;
  leaseMs: number;
  pollIntervalMs: number;
  requestTimeoutMs: number;
  workerId?: string;
}

/** The outcome of one attempt, and what follows it. Shared by the worker and resend. */
export function outcomeOf(
  event: ClaimedEvent,
  sentAt: number,
  result: SendResult,
  manual: boolean,
): AttemptOutcome {
  const delivered = result.status !== null && result.status >= 200 && result.status < 300;
  const attempts = event.retryCount + 1;
  let next: Next;
  if (delivered) next = { kind: 'done' };
  else if (manual) next = { kind: 'release' };
  else if (attempts >= event.maxAttempts || !event.webhook.isActive) next = { kind: 'done' };
  else {
    const wait = countdownSeconds(event.webhook.retryCountdownConfig, attempts);
    next = { kind: 'retry', at: isoMicro(sentAt + wait * 1000) };
  }
  return {
    id: event.id,
    at: isoMicro(sentAt),
    status: result.status,
    content: result.content,
    delivered,
    next,
  };
}

/**
 * Delivers due events: claim a batch under a lease, send with bounded concurrency,
 * record the batch in one statement, repeat while there is work; otherwise sleep until
 * a wake-up or the poll interval.
 */
export class Worker {
  readonly id: string;
  private running = false;
  private loop: Promise<void> | undefined;
  private sleeper: { timer: NodeJS.Timeout; resolve: () => void } | undefined;
  private woken = false;
  private unlisten: (() => Promise<void>) | undefined;

  constructor(private readonly o: WorkerOptions) {
    this.id = o.workerId ?? `worker-${randomUUID().slice(0, 8)}`;
  }

  /** Claims and delivers one batch; resolves to the number of events attempted. */
  async runOnce(): Promise<number> {
    const { db, clock, sender } = this.o;
    const events = await claimDue(db, {
      workerId: this.id,
      now: isoMicro(clock.now()),
      leaseMs: this.o.leaseMs,
      limit: this.o.batchSize,
    });
    if (events.length === 0) return 0;
    const outcomes: AttemptOutcome[] = new Array(events.length);
    let nextIndex = 0;
    const lane = async () => {
      while (nextIndex < events.length) {
        const i = nextIndex++;
        const event = events[i]!;
        const sentAt = clock.now();
        const result = await sender.send(buildRequest(event, sentAt, this.o.requestTimeoutMs));
        outcomes[i] = outcomeOf(event, sentAt, result, false);
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.o.concurrency, events.length) }, lane));
    await recordAttempts(db, this.id, outcomes);
    for (const o of outcomes) {
      this.o.logger.debug(
        { event: o.id, status: o.status, delivered: o.delivered, next: o.next.kind },
        'attempt',
      );
    }
    return events.length;
  }

  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    this.unlisten = await onDue(this.o.db, () => this.wake());
    this.loop = this.run();
  }

  wake(): void {
    this.woken = true;
    if (this.sleeper) {
      clearTimeout(this.sleeper.timer);
      this.sleeper.resolve();
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    this.wake();
    await this.loop;
    await this.unlisten?.();
  }

  private async run(): Promise<void> {
    while (this.running) {
      this.woken = false;
      let attempted = 0;
      try {
        attempted = await this.runOnce();
      } catch (caught) {
        this.o.logger.error(
          { err: toError(caught) },
          'delivery batch failed; retrying after the poll interval',
        );
      }
      if (!this.running) break;
      if (attempted === this.o.batchSize || this.woken) continue;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          this.sleeper = undefined;
          resolve();
        }, this.o.pollIntervalMs);
        this.sleeper = { timer, resolve };
      });
      this.sleeper = undefined;
    }
  }
}
