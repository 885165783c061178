import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { isoMicro, type Clock } from '../core/clock.js';
import { toError } from '../core/errors.js';
import { countdownSeconds } from '../core/retry.js';
import { claimDue, releaseLeases, type ClaimedEvent } from '../queue/claim.js';
import { recordAttempts, type AttemptOutcome, type Next } from '../queue/record.js';
import { onDue } from '../queue/wake.js';
import type { Db } from '../store/db.js';
import { sendCallback } from './callback.js';
import { buildRequest } from './request.js';
import type { SendResult, Sender } from './sender.js';

export interface WorkerOptions {
  db: Db;
  clock: Clock;
  sender: Sender;
  logger: Logger;
  /** Most events one claim takes. */
  batchSize: number;
  /** Most requests in flight at once. */
  concurrency: number;
  leaseMs: number;
  pollIntervalMs: number;
  requestTimeoutMs: number;
  workerId?: string;
  /** How long finished attempts wait to be recorded together (default 20 ms). */
  flushIntervalMs?: number;
  /**
   * How many of this worker's slots one webhook may hold (default half of them, at least
   * one): a target that hangs until its timeout leaves the other slots to the others.
   */
  perWebhookConcurrency?: number;
}

export interface StopOptions {
  /** How long in-flight attempts may still finish (default: as long as they take). */
  graceMs?: number;
}

/** Retry-After can delay a retry by at most this much, whatever the target asks. */
export const RETRY_AFTER_CAP_MS = 60 * 60 * 1000;

const BACKOFF_MIN_MS = 100;
const BACKOFF_MAX_MS = 5_000;

const backoffAfter = (previous: number) =>
  previous === 0 ? BACKOFF_MIN_MS : Math.min(previous * 2, BACKOFF_MAX_MS);

const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref?.());

/**
 * The outcome of one attempt, and what follows it. Shared by the worker and resend.
 * - 2xx: delivered. Anything else is a failure (a 3xx included: redirects are not followed).
 * - 410 Gone: the target asks never to be called again; the webhook is deactivated and
 *   the event stops here.
 * - 429 and 503 with Retry-After: the next attempt waits max(countdown, Retry-After),
 *   the Retry-After part capped at one hour, so a target can slow retries down but can
 *   neither speed them up nor park an event for days.
 * - No response (refused, timed out, reset): a failure; the reason is the content.
 */
export function outcomeOf(
  event: ClaimedEvent,
  sentAt: number,
  result: SendResult,
  manual: boolean,
  worker: string,
): AttemptOutcome {
  const { status } = result;
  const delivered = status !== null && status >= 200 && status < 300;
  const gone = status === 410;
  const attempts = event.retryCount + 1;
  let next: Next;
  if (delivered || gone) next = { kind: 'done' };
  else if (manual) next = { kind: 'release' };
  else if (attempts >= event.maxAttempts || !event.webhook.isActive) next = { kind: 'done' };
  else {
    let waitMs = countdownSeconds(event.webhook.retryCountdownConfig, attempts) * 1000;
    if ((status === 429 || status === 503) && result.retryAfterMs !== undefined) {
      waitMs = Math.max(waitMs, Math.min(result.retryAfterMs, RETRY_AFTER_CAP_MS));
    }
    next = { kind: 'retry', at: isoMicro(sentAt + waitMs) };
  }
  return {
    id: event.id,
    at: isoMicro(sentAt),
    status,
    content: result.content,
    delivered,
    next,
    durationMs: result.durationMs,
    error: status === null ? result.content : null,
    worker,
    deactivate: gone,
  };
}

interface Finished {
  event: ClaimedEvent;
  outcome: AttemptOutcome;
}

/**
 * Delivers due events as a pipeline: up to `concurrency` requests in flight, more
 * claimed as slots free up (never more than the free slots), finished attempts recorded
 * together every short tick, one statement per flush. A slow target holds only its own
 * slots, never a batch. When there is nothing due it sleeps until a wake-up or the poll
 * interval; when the database fails it backs off and resumes by itself.
 */
export class Worker {
  readonly id: string;
  private running = false;
  private loop: Promise<void> | undefined;
  private sleeper: { timer: NodeJS.Timeout; resolve: () => void } | undefined;
  private woken = false;
  /** Completions should wake the loop: the last claim found work, or every slot was busy. */
  private backlog = false;
  private unlisten: (() => Promise<void>) | undefined;
  /** Requests on the wire, by event id; each promise settles when its attempt is finished. */
  private readonly sending = new Map<number, Promise<void>>();
  private readonly sendingPerWebhook = new Map<number, number>();
  /** Bumped by stop(): attempts of an earlier generation finishing late are not recorded. */
  private generation = 0;
  private pending: Finished[] = [];
  private flushTimer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  private flushBackoffMs = 0;
  private readonly callbacks = new Set<Promise<void>>();
  private readonly flushIntervalMs: number;
  private readonly share: number;

  constructor(private readonly o: WorkerOptions) {
    this.id = o.workerId ?? `worker-${randomUUID().slice(0, 8)}`;
    this.flushIntervalMs = o.flushIntervalMs ?? 20;
    this.share = o.perWebhookConcurrency ?? Math.max(1, Math.ceil(o.concurrency / 2));
  }

  /**
   * Claims one batch, delivers all of it, records it; resolves to the number of events
   * attempted. For tests and tools: it takes no fairness share and waits for everything.
   */
  async runOnce(): Promise<number> {
    const events = await claimDue(this.o.db, {
      workerId: this.id,
      now: isoMicro(this.o.clock.now()),
      leaseMs: this.o.leaseMs,
      limit: this.o.batchSize,
    });
    if (events.length === 0) return 0;
    const finished: Finished[] = new Array(events.length);
    let nextIndex = 0;
    const lane = async () => {
      while (nextIndex < events.length) {
        const i = nextIndex++;
        const event = events[i]!;
        finished[i] = { event, outcome: await this.attempt(event) };
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.o.concurrency, events.length) }, lane));
    await recordAttempts(
      this.o.db,
      this.id,
      finished.map((f) => f.outcome),
    );
    this.afterRecord(finished);
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

  /**
   * Stops claiming, lets in-flight attempts finish for up to `graceMs`, records what
   * finished, and gives back the leases of what did not, so a graceful shutdown leaves
   * no event locked (a request cut short may still have reached its target: delivery is
   * at least once).
   */
  async stop(options: StopOptions = {}): Promise<void> {
    this.running = false;
    this.wake();
    await this.loop;
    this.loop = undefined;
    await this.unlisten?.().catch((caught: unknown) => {
      this.o.logger.warn({ err: toError(caught) }, 'could not stop listening for wake-ups');
    });
    this.unlisten = undefined;

    const graceMs = options.graceMs ?? Number.POSITIVE_INFINITY;
    const inFlight = Promise.all(this.sending.values());
    if (Number.isFinite(graceMs)) await Promise.race([inFlight, delay(graceMs)]);
    else await inFlight;
    const unfinished = [...this.sending.keys()];
    this.generation++;
    this.sending.clear();
    this.sendingPerWebhook.clear();

    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    await this.flushing;
    const finished = this.pending.splice(0);
    try {
      await recordAttempts(
        this.o.db,
        this.id,
        finished.map((f) => f.outcome),
      );
      this.afterRecord(finished);
    } catch (caught) {
      // The leases run out and the events are attempted again: at least once.
      this.o.logger.error(
        { err: toError(caught), attempts: finished.length },
        'could not record the last attempts on shutdown',
      );
    }
    try {
      const released = await releaseLeases(this.o.db, this.id, unfinished);
      if (released > 0) this.o.logger.info({ released }, 'released events still in flight');
    } catch (caught) {
      this.o.logger.error({ err: toError(caught) }, 'could not release leases on shutdown');
    }
    if (this.callbacks.size > 0) await Promise.all(this.callbacks);
  }

  private async run(): Promise<void> {
    let backoffMs = 0;
    while (this.running) {
      this.woken = false;
      const free = this.o.concurrency - this.sending.size;
      let claimed = 0;
      if (free > 0) {
        try {
          const events = await claimDue(this.o.db, {
            workerId: this.id,
            now: isoMicro(this.o.clock.now()),
            leaseMs: this.o.leaseMs,
            limit: Math.min(free, this.o.batchSize),
            perWebhook: this.share,
            inFlight: this.sendingPerWebhook,
          });
          if (backoffMs > 0) this.o.logger.info('claiming again after a database failure');
          backoffMs = 0;
          for (const event of events) this.launch(event);
          claimed = events.length;
        } catch (caught) {
          backoffMs = backoffAfter(backoffMs);
          this.o.logger.error({ err: toError(caught), backoffMs }, 'claim failed; backing off');
          await this.sleep(backoffMs);
          continue;
        }
      }
      if (!this.running) break;
      this.backlog = claimed > 0 || free <= 0;
      // A claim that found work may have left more behind (a webhook at its share, or
      // more due than slots): look again while slots are free.
      if (claimed > 0 && this.sending.size < this.o.concurrency) continue;
      if (this.woken) continue;
      await this.sleep(this.o.pollIntervalMs);
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.sleeper = undefined;
        resolve();
      }, ms);
      this.sleeper = {
        timer,
        resolve: () => {
          this.sleeper = undefined;
          resolve();
        },
      };
    });
  }

  private launch(event: ClaimedEvent): void {
    const generation = this.generation;
    const webhookId = event.webhook.id;
    this.sendingPerWebhook.set(webhookId, (this.sendingPerWebhook.get(webhookId) ?? 0) + 1);
    const done = this.attempt(event).then((outcome) => {
      if (generation !== this.generation) return; // stop() gave its lease back
      this.sending.delete(event.id);
      const left = (this.sendingPerWebhook.get(webhookId) ?? 1) - 1;
      if (left > 0) this.sendingPerWebhook.set(webhookId, left);
      else this.sendingPerWebhook.delete(webhookId);
      this.pending.push({ event, outcome });
      this.scheduleFlush();
      if (this.backlog) this.wake();
    });
    this.sending.set(event.id, done);
  }

  /** Sends one attempt; never throws (a request that could not even be built is a failure). */
  private async attempt(event: ClaimedEvent): Promise<AttemptOutcome> {
    const sentAt = this.o.clock.now();
    let result: SendResult;
    try {
      result = await this.o.sender.send(buildRequest(event, sentAt, this.o.requestTimeoutMs));
    } catch (caught) {
      result = {
        status: null,
        content: `Request failed: ${toError(caught).message}`,
        durationMs: 0,
      };
    }
    return outcomeOf(event, sentAt, result, false, this.id);
  }

  private scheduleFlush(): void {
    if (this.flushing || this.flushTimer) return;
    const wait = this.pending.length >= this.o.batchSize ? 0 : this.flushIntervalMs;
    this.flushTimer = setTimeout(
      () => {
        this.flushTimer = undefined;
        this.flushing = this.flush().finally(() => {
          this.flushing = undefined;
          if (this.pending.length > 0 && !this.flushTimer) this.scheduleFlush();
        });
      },
      Math.max(wait, this.flushBackoffMs),
    );
  }

  /** Records what has finished, in one statement; on failure keeps it for the next try. */
  private async flush(): Promise<void> {
    const batch = this.pending.splice(0, this.o.batchSize);
    if (batch.length === 0) return;
    try {
      await recordAttempts(
        this.o.db,
        this.id,
        batch.map((f) => f.outcome),
      );
    } catch (caught) {
      this.pending.unshift(...batch);
      this.flushBackoffMs = backoffAfter(this.flushBackoffMs);
      this.o.logger.error(
        { err: toError(caught), attempts: batch.length, backoffMs: this.flushBackoffMs },
        'recording attempts failed; backing off',
      );
      return;
    }
    this.flushBackoffMs = 0;
    this.afterRecord(batch);
    // Recording released leases: a limited or ordered webhook may have its next event.
    if (this.running) this.wake();
  }

  /** Logs the recorded attempts and fires their callbacks, which nobody waits for. */
  private afterRecord(finished: Finished[]): void {
    for (const { event, outcome } of finished) {
      this.o.logger.debug(
        {
          event: outcome.id,
          status: outcome.status,
          delivered: outcome.delivered,
          next: outcome.next.kind,
        },
        'attempt',
      );
      if (outcome.deactivate) {
        this.o.logger.warn(
          { webhook: event.webhook.id },
          'target answered 410 Gone; webhook deactivated',
        );
      }
      if (!event.webhook.callback) continue;
      const callback = sendCallback(
        this.o.sender,
        event,
        outcome,
        this.o.clock.now(),
        this.o.requestTimeoutMs,
        this.o.logger,
      ).finally(() => this.callbacks.delete(callback));
      this.callbacks.add(callback);
    }
  }
}
