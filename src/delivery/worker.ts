import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { isoMicro, type Clock } from '../core/clock.js';
import { toError } from '../core/errors.js';
import { isDeliveredStatus } from '../core/delivered.js';
import { countdownSeconds } from '../core/retry.js';
import {
  claimBatch,
  claimDue,
  countsLeases,
  hasSharedLimit,
  releaseLeases,
  type ClaimedEvent,
} from '../queue/claim.js';
import { ClaimCursors, type ClaimCursorOptions } from '../queue/cursors.js';
import { recordAttempts, type AttemptOutcome, type Next } from '../queue/record.js';
import type { HandedLease, HandoffReport } from '../queue/handoff.js';
import { onDue, onWebhookChanged } from '../queue/wake.js';
import type { Db } from '../store/db.js';
import { sendCallback } from './callback.js';
import { buildRequest, requestTimeoutOf } from './request.js';
import type { SendResult, Sender } from './sender.js';
import { SlotWindows } from './slot-windows.js';

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
   * How many of this worker's slots one webhook may hold at most (default half of them,
   * at least one): its share. Within it, a webhook holds as many as its window allows
   * (see SlotWindows): a target that hangs soon holds one.
   */
  perWebhookConcurrency?: number;
  /**
   * How many claimed events wait in memory for a free slot (default `batchSize`). Claims
   * are made ahead of the slots, so a slot that frees up is filled at once from memory
   * and the database sees few, large claims instead of one small claim per completion.
   */
  prefetch?: number;
  /** Where claims start reading each webhook's queue (see ClaimCursors); for tests. */
  claimCursors?: ClaimCursorOptions;
  /** Longest time between sweeps of a busy worker (default SWEEP_MS); for tests. */
  sweepMs?: number;
}

export interface StopOptions {
  /** How long in-flight attempts may still finish (default: as long as they take). */
  graceMs?: number;
}

/** Retry-After can delay a retry by at most this much, whatever the target asks. */
export const RETRY_AFTER_CAP_MS = 60 * 60 * 1000;

/**
 * How far apart two processes' clocks on one machine may read: a change heard this long
 * before a statement began is taken as heard after it (see bufferEvents).
 */
const CLOCK_SKEW_MS = 50;

/** Most recording statements one worker runs at once. */
const MAX_FLUSHES = 2;

/**
 * How often a busy worker's claims look at every webhook with events queued (a sweep),
 * where the others look only at the webhooks it holds or has claimed from lately. A
 * sweep used to probe the queue of every active webhook, idle ones too: with 5,000 idle
 * webhooks beside the one drained, every claim of a drain spent 14.8 ms, against 6.2
 * with none (`IDLE=5000 bench/drain.ts 50000`). It now skips those with nothing queued
 * (QUEUED_WEBHOOKS in claim.ts), but still descends the queue's index once per webhook
 * that has events, leased ones and retries not due yet included. Events a publish left
 * for the workers wake a claim at once that looks at their webhooks too (its NOTIFY
 * names them; one that names none, or a lease given back, wakes a sweep), and a claim
 * that comes back short with nothing waiting for room is followed by a sweep unless the
 * last sweep found everything due and every claim since came back short; what else
 * becomes due (a retry, a lease that ran out) waits this long at most for a busy worker
 * to look.
 */
export const SWEEP_MS = 100;

/** Most webhooks named by NOTIFYs a worker keeps for its next claim; beyond, it sweeps. */
const MAX_NOTIFIED = 1_000;

const BACKOFF_MIN_MS = 100;
const BACKOFF_MAX_MS = 5_000;

const backoffAfter = (previous: number) =>
  previous === 0 ? BACKOFF_MIN_MS : Math.min(previous * 2, BACKOFF_MAX_MS);

/**
 * Runs `fn` after `ms`; with 0, in this turn of the event loop (setImmediate), where a
 * timer of 0 waits at least 1 ms. A webhook with `ordered` sends one event per round of
 * claim, attempt and record: with 3,000 queued it drained at 165-176 events/s with a
 * timer, 261-282 without (`HOOK_CONFIG='{"ordered":true}' bench/backlog-probe.ts 3000`).
 * Returns what cancels it.
 */
function runAfter(ms: number, fn: () => void): () => void {
  if (ms === 0) {
    const immediate = setImmediate(fn);
    return () => clearImmediate(immediate);
  }
  const timer = setTimeout(fn, ms);
  return () => clearTimeout(timer);
}

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
  const delivered = isDeliveredStatus(status);
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

/** A claimed event waiting for a slot, and when its lease runs out (clock ms). */
interface Buffered {
  event: ClaimedEvent;
  leasedUntil: number;
}

interface Finished {
  event: ClaimedEvent;
  outcome: AttemptOutcome;
}

/**
 * Delivers due events as a pipeline: claims of up to `batchSize` events fill an
 * in-memory buffer ahead of the slots, up to `concurrency` requests are in flight, and
 * finished attempts are recorded together every short tick, one statement per flush.
 *
 * Fairness: one webhook may hold at most its window of the slots (its share, half of
 * them, once its target has answered promptly; one once it lets requests time out; see
 * SlotWindows), and events waiting in the buffer in proportion; slots are handed out
 * round-robin over the webhooks that have events waiting. A target that hangs until its
 * timeout therefore holds only its own few slots and buffered events; everything else
 * keeps flowing.
 *
 * A buffered event holds a lease it has not used yet. One whose lease would run out
 * before its request could finish is never sent: its lease is given back instead, so no
 * other worker can be attempting it at the same time.
 *
 * When there is nothing due it sleeps until a wake-up or the poll interval; when the
 * database fails it backs off and resumes by itself.
 */
export class Worker {
  readonly id: string;
  private running = false;
  private loop: Promise<void> | undefined;
  private sleeper: { timer: NodeJS.Timeout; resolve: () => void } | undefined;
  private woken = false;
  /**
   * What a finished attempt wakes the loop for: enough room for a claim, one of the
   * webhooks a claim skipped for being near their cap making room, or nothing (the last
   * claim found nothing due; a publish or the poll will wake it).
   */
  private waitFor: 'room' | 'capped' | 'notify' = 'room';
  /**
   * A claim is on its way. Attempts that finish meanwhile do not wake the loop for room:
   * it looks at the room when the answer is in, and a claim started before that answer
   * would ask again for webhooks whose cap the answer fills (an empty claim).
   */
  private claiming = false;
  private capped = new Set<number>();
  /** Whether the next claim must serve webhooks with shared limits (it costs a round trip). */
  private gate = true;
  /** Where the next claim starts reading each webhook's queue. */
  private readonly cursors: ClaimCursors;
  /**
   * When the last claim that looked at every active webhook was made (clock ms), and
   * whether the next one must: a NOTIFY named no webhook, leases were given back, or a
   * claim failed. Between such sweeps, claims look only at the webhooks this worker
   * holds or has claimed from lately, and those NOTIFYs named (see SWEEP_MS).
   */
  private sweptAt = Number.NEGATIVE_INFINITY;
  private sweepNeeded = true;
  /** Webhooks a publish left due events for since the last claim (its NOTIFY named them). */
  private readonly notified = new Set<number>();
  /**
   * Whether the last claim found everything due (it came back short of its limit): only
   * then does the worker take events straight from publishes, so that fresh events never
   * overtake a backlog.
   */
  private caughtUp = false;
  /** Events handed over by publishes, in all (see Handoff). */
  private accepted = 0;
  /** Webhook changes this worker has heard of, counted. */
  private changesHeard = 0;
  /** The last change heard of each webhook: its count, and when it was heard (clock ms). */
  private readonly lastChange = new Map<number, { n: number; at: number }>();
  private unlisten: (() => Promise<void>) | undefined;
  /** Requests on the wire, by event id; each promise settles when its attempt is finished. */
  private readonly sending = new Map<number, Promise<void>>();
  private readonly sendingPerWebhook = new Map<number, number>();
  /**
   * Claimed events waiting for a slot, per webhook, in claim order. The Map's order is
   * the round-robin order: a webhook that was just given a slot moves to the back.
   */
  private readonly buffer = new Map<number, Buffered[]>();
  private buffered = 0;
  /** Buffered plus in-flight events per webhook: what the next claim may add to. */
  private readonly held = new Map<number, number>();
  /** Bumped by stop(): attempts of an earlier generation finishing late are not recorded. */
  private generation = 0;
  private pending: Finished[] = [];
  /** Cancels the flush that is scheduled. */
  private flushTimer: (() => void) | undefined;
  /** The flush timer runs out at once (not after the tick). */
  private flushTimerSoon = false;
  /** An attempt waiting in `pending` is of a webhook whose limit counts leases. */
  private prompt = false;
  private readonly flushing = new Set<Promise<void>>();
  private flushBackoffMs = 0;
  private readonly callbacks = new Set<Promise<void>>();
  private readonly flushIntervalMs: number;
  private readonly share: number;
  private readonly prefetch: number;
  /** Most events one webhook may hold: its share of slots plus a full buffer. */
  private readonly holdCap: number;
  /** How many slots each webhook may hold now, within its share. */
  private readonly windows: SlotWindows;
  /** Requests in flight to webhooks that were slow when they went out (see SlotWindows). */
  private slowSending = 0;
  /** Most of those at once: half the slots. */
  private readonly slowCap: number;
  /** The smallest claim worth making while the pipeline is busy. */
  private readonly chunk: number;

  constructor(private readonly o: WorkerOptions) {
    this.id = o.workerId ?? `worker-${randomUUID().slice(0, 8)}`;
    this.flushIntervalMs = o.flushIntervalMs ?? 20;
    this.share = o.perWebhookConcurrency ?? Math.max(1, Math.ceil(o.concurrency / 2));
    this.prefetch = o.prefetch ?? o.batchSize;
    this.holdCap = this.share + this.prefetch;
    this.chunk = Math.max(1, Math.floor(this.prefetch / 4));
    this.windows = new SlotWindows(this.share);
    this.slowCap = Math.max(1, Math.floor(o.concurrency / 2));
    this.cursors = new ClaimCursors(o.claimCursors);
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
    const stopWaking = await onDue(this.o.db, (webhookIds) => {
      if (webhookIds && this.notified.size + webhookIds.length <= MAX_NOTIFIED) {
        for (const id of webhookIds) this.notified.add(id);
      } else {
        this.sweepNeeded = true;
      }
      this.wake();
    });
    const stopWatching = await onWebhookChanged(this.o.db, (id) => this.webhookChanged(id)).catch(
      async (caught: unknown) => {
        await stopWaking();
        throw caught;
      },
    );
    this.unlisten = async () => {
      await Promise.all([stopWaking(), stopWatching()]);
    };
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
   * What this worker would take straight from a publish now (see Handoff): its room,
   * once it has claimed everything due, and the webhooks at their hold cap, whose
   * events must queue for a claim so that one slow target cannot fill memory.
   */
  handoffReport(): HandoffReport {
    const full: number[] = [];
    for (const [webhookId, held] of this.held) {
      if (held >= this.holdCapOf(webhookId)) full.push(webhookId);
    }
    return {
      workerId: this.id,
      room: this.running && this.caughtUp ? Math.max(0, this.room()) : 0,
      full,
      accepted: this.accepted,
    };
  }

  /**
   * Takes events a publish read at `lease.readAt` and leased to this worker until
   * `lease.until` (clock ms), as if it had claimed them. A stopped worker gives them
   * back at once.
   */
  accept(events: ClaimedEvent[], lease: HandedLease): void {
    this.accepted += events.length;
    this.o.logger.debug({ events: events.length }, 'took events from a publish');
    if (!this.running) {
      this.giveBack(
        events.map((e) => e.id),
        'events handed over after stopping',
      );
      return;
    }
    this.bufferEvents(events, { at: lease.readAt }, lease.until);
    this.dispatch();
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
    const unfinished = [...this.sending.keys(), ...this.takeBuffered().map((b) => b.event.id)];
    this.generation++;
    this.sending.clear();
    this.sendingPerWebhook.clear();
    this.slowSending = 0;
    this.held.clear();

    this.flushTimer?.();
    this.flushTimer = undefined;
    await Promise.all(this.flushing);
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
      this.waitFor = 'room';
      if (this.room() >= this.chunk || this.sending.size + this.buffered === 0) {
        let events: ClaimedEvent[];
        // Webhooks that could take only a few more events sit this claim out: claims stay
        // large, and each such webhook is claimed for again once it has made room. The
        // others may take what their hold cap leaves, which a narrow window lowers.
        const capped = new Set<number>();
        const rooms = new Map<number, number>();
        const note = (webhookId: number, held: number) => {
          const near = !this.hasChunkOfRoom(webhookId);
          if (near) capped.add(webhookId);
          rooms.set(webhookId, near ? 0 : this.holdCapOf(webhookId) - held);
        };
        for (const [webhookId, held] of this.held) note(webhookId, held);
        for (const webhookId of this.windows.throttled()) {
          if (!this.held.has(webhookId)) note(webhookId, 0);
        }
        const limit = Math.min(this.room(), this.o.batchSize);
        const since = { changes: this.changesHeard };
        // the leases the claim writes run from this moment, however long its answer takes
        const claimedAt = this.o.clock.now();
        const sweep = this.sweepNeeded || claimedAt - this.sweptAt >= (this.o.sweepMs ?? SWEEP_MS);
        if (sweep) this.sweepNeeded = false;
        const notified = [...this.notified];
        this.notified.clear();
        this.claiming = true;
        try {
          const batch = await claimBatch(this.o.db, {
            workerId: this.id,
            now: isoMicro(claimedAt),
            leaseMs: this.o.leaseMs,
            limit,
            perWebhook: this.holdCap,
            room: rooms,
            after: this.cursors.positions(claimedAt),
            gate: this.gate,
            knownOnly: !sweep,
            notified,
          });
          events = batch.events;
          this.cursors.advance(events);
          this.gate = batch.limitedDue;
          // only a sweep can say that nothing else is due
          this.caughtUp = events.length < limit && (sweep || this.caughtUp);
          if (sweep) this.sweptAt = claimedAt;
          if (backoffMs > 0) this.o.logger.info('claiming again after a database failure');
          backoffMs = 0;
        } catch (caught) {
          this.caughtUp = false;
          // what it was to look at, it looks at in the next claim, a sweep
          this.sweepNeeded = true;
          backoffMs = backoffAfter(backoffMs);
          this.o.logger.error({ err: toError(caught), backoffMs }, 'claim failed; backing off');
          await this.sleep(backoffMs);
          continue;
        } finally {
          this.claiming = false;
        }
        this.bufferEvents(events, since, claimedAt + this.o.leaseMs);
        this.dispatch();
        if (!this.running) break;
        // A full claim may have left more behind: look again while there is room.
        if (events.length === limit && this.room() >= this.chunk) continue;
        if (events.length < limit) {
          // Nothing else is due, but maybe of the webhooks that sat this claim out or took
          // all the room they had. Claim again once one of them has made room (at once if
          // one already has: attempts finished while the claim ran), or on a wake-up (a
          // publish, a recorded attempt) or the poll.
          const took = new Map<number, number>();
          for (const e of events) took.set(e.webhook.id, (took.get(e.webhook.id) ?? 0) + 1);
          this.capped = capped;
          for (const [webhookId, n] of took) {
            if (n >= (rooms.get(webhookId) ?? this.holdCap)) this.capped.add(webhookId);
          }
          this.waitFor = this.capped.size > 0 ? 'capped' : 'notify';
          // a claim of the known webhooks alone cannot say that nothing else is due:
          // before sleeping, look at every webhook, unless the last sweep (made less than
          // SWEEP_MS ago, or this claim would be one) found everything due and every claim
          // since came back short
          if (!sweep && this.waitFor === 'notify' && !this.caughtUp) {
            this.sweepNeeded = true;
            this.woken = true;
          }
          if ([...this.capped].some((webhookId) => this.hasChunkOfRoom(webhookId))) {
            this.woken = true;
          }
        }
      }
      if (this.woken) continue;
      await this.sleep(this.o.pollIntervalMs);
    }
  }

  /**
   * Events this worker could still take on: free slots plus free buffer places. Events
   * of a webhook that has all its share of slots busy wait apart and do not count: one
   * slow webhook cannot fill the buffer, and with one fast webhook they are claimed in
   * large chunks. What waits apart is bounded: at most concurrency / share webhooks can
   * be at their share, each holding at most holdCap events.
   */
  private room(): number {
    let ready = 0;
    for (const [webhookId, waiting] of this.buffer)
      if (this.mayLaunch(webhookId)) ready += waiting.length;
    return this.o.concurrency + this.prefetch - this.sending.size - ready;
  }

  /** Whether `webhookId` may have one more request in flight: its window and, if slow, the slow ones' cap. */
  private mayLaunch(webhookId: number): boolean {
    if ((this.sendingPerWebhook.get(webhookId) ?? 0) >= this.windows.of(webhookId)) return false;
    return this.slowSending < this.slowCap || !this.windows.slow(webhookId);
  }

  /**
   * Most events `webhookId` may hold, in flight and buffered: its window of slots, and
   * buffered events in the proportion a full share has to a full buffer.
   */
  private holdCapOf(webhookId: number): number {
    const window = this.windows.of(webhookId);
    return window + Math.ceil((this.prefetch * window) / this.share);
  }

  /** Whether `webhookId` could take a claim's chunk more before reaching its hold cap. */
  private hasChunkOfRoom(webhookId: number): boolean {
    const cap = this.holdCapOf(webhookId);
    const chunk = Math.max(1, Math.min(this.chunk, Math.floor(cap / 4)));
    return (this.held.get(webhookId) ?? 0) <= cap - chunk;
  }

  /** After an attempt of `webhookId` finished: should the loop claim again now? */
  private shouldClaimAfter(webhookId: number): boolean {
    if (this.waitFor === 'room') return this.room() >= this.chunk;
    if (this.waitFor === 'capped')
      return this.capped.has(webhookId) && this.hasChunkOfRoom(webhookId);
    return false;
  }

  /**
   * How much longer than its request an event's lease must last for it to be sent: a
   * second, or half of what the lease has beyond the timeout when that is shorter, so a
   * freshly claimed event always goes out.
   */
  private leaseMargin(timeoutMs: number): number {
    return Math.min(1_000, Math.max(0, (this.o.leaseMs - timeoutMs) / 2));
  }

  /**
   * Buffers events read from the database `since` this worker had heard of so many
   * webhook changes (a claim), or at a time (a hand-off, read in another statement or
   * process), and leased until `leasedUntil`. Those whose webhook changed since carry
   * its old settings: the NOTIFY of a change committed while their statement ran can
   * arrive before the statement's answer, after giveBackBuffered has looked. They are
   * given back, to be claimed again with the new settings. A time may come from another
   * process's clock: a change heard up to CLOCK_SKEW_MS before it counts too.
   */
  private bufferEvents(
    events: ClaimedEvent[],
    since: { changes: number } | { at: number },
    leasedUntil: number,
  ): void {
    const stale: number[] = [];
    for (const event of events) {
      const webhookId = event.webhook.id;
      const change = this.lastChange.get(webhookId);
      if (
        change &&
        ('changes' in since ? change.n > since.changes : change.at >= since.at - CLOCK_SKEW_MS)
      ) {
        stale.push(event.id);
        continue;
      }
      let waiting = this.buffer.get(webhookId);
      if (!waiting) this.buffer.set(webhookId, (waiting = []));
      waiting.push({ event, leasedUntil });
      this.buffered++;
      this.held.set(webhookId, (this.held.get(webhookId) ?? 0) + 1);
    }
    if (stale.length > 0) this.giveBack(stale, 'events read before their webhook changed');
  }

  /** A webhook changed or was deleted (see giveBackBuffered and bufferEvents). */
  private webhookChanged(webhookId: number): void {
    const now = this.o.clock.now();
    // only changes heard since the oldest statement still running matter
    if (this.lastChange.size > 1_000) {
      for (const [id, { at }] of this.lastChange) if (at < now - 60_000) this.lastChange.delete(id);
    }
    this.lastChange.set(webhookId, { n: ++this.changesHeard, at: now });
    this.giveBackBuffered(webhookId);
  }

  /** Empties the buffer and returns what it held (their leases are still ours). */
  private takeBuffered(): Buffered[] {
    const all = [...this.buffer.values()].flat();
    this.buffer.clear();
    this.buffered = 0;
    for (const { event } of all) this.forget(event.webhook.id);
    return all;
  }

  private forget(webhookId: number): void {
    const left = (this.held.get(webhookId) ?? 1) - 1;
    if (left > 0) this.held.set(webhookId, left);
    else this.held.delete(webhookId);
  }

  /**
   * Fills free slots from the buffer, one event per webhook per round, skipping webhooks
   * at their share. An event whose lease would expire before its request could time out
   * is not sent; its lease is given back so that it is due again at once.
   */
  private dispatch(): void {
    if (!this.running) return;
    const expired: number[] = [];
    const now = this.o.clock.now();
    let progress = true;
    while (progress && this.sending.size < this.o.concurrency && this.buffered > 0) {
      progress = false;
      for (const [webhookId, waiting] of this.buffer) {
        if (this.sending.size >= this.o.concurrency) break;
        if (!this.mayLaunch(webhookId)) continue;
        const next = waiting.shift()!;
        this.buffered--;
        this.buffer.delete(webhookId);
        if (waiting.length > 0) this.buffer.set(webhookId, waiting); // to the back of the round
        progress = true;
        const timeoutMs = requestTimeoutOf(next.event.webhook, this.o.requestTimeoutMs);
        // A webhook whose own timeout is as long as the lease could never pass this
        // check, not even fresh from its claim: its events go out as they did before
        // there was a buffer, on a lease no longer than the request.
        const shortLease =
          timeoutMs < this.o.leaseMs &&
          next.leasedUntil < now + timeoutMs + this.leaseMargin(timeoutMs);
        if (shortLease) {
          this.forget(webhookId);
          expired.push(next.event.id);
        } else this.launch(next.event);
      }
    }
    if (expired.length > 0) this.giveBack(expired, 'leases that ran short');
  }

  /**
   * A webhook changed (its target, secret or headers; paused) or was deleted: the events
   * of it waiting in the buffer carry its old settings. Their leases are given back, so
   * they are claimed again with the new settings, or wait while it is paused. Requests
   * already on the wire finish as they started.
   */
  private giveBackBuffered(webhookId: number): void {
    const waiting = this.buffer.get(webhookId);
    if (!waiting || !this.running) return;
    this.buffer.delete(webhookId);
    this.buffered -= waiting.length;
    for (let i = 0; i < waiting.length; i++) this.forget(webhookId);
    this.giveBack(
      waiting.map((b) => b.event.id),
      'events of a webhook that changed',
    );
  }

  /** Gives leases back so that the events are due again at once, and looks for them. */
  private giveBack(ids: number[], what: string): void {
    releaseLeases(this.o.db, this.id, ids).then(
      () => {
        // they stand before where the claims have got to
        this.cursors.reset();
        this.sweepNeeded = true;
        this.wake();
      },
      (caught: unknown) => {
        this.o.logger.warn(
          { err: toError(caught), events: ids.length },
          `could not give back the leases of ${what}; they expire by themselves`,
        );
      },
    );
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
    const slow = this.windows.slow(webhookId);
    if (slow) this.slowSending++;
    const done = this.attempt(event).then((outcome) => {
      if (generation !== this.generation) return; // stop() gave its lease back
      if (slow) this.slowSending--;
      this.sending.delete(event.id);
      const left = (this.sendingPerWebhook.get(webhookId) ?? 1) - 1;
      if (left > 0) this.sendingPerWebhook.set(webhookId, left);
      else this.sendingPerWebhook.delete(webhookId);
      this.forget(webhookId);
      this.pending.push({ event, outcome });
      if (countsLeases(event.webhook.config)) this.prompt = true;
      this.scheduleFlush();
      this.dispatch();
      // while a claim runs, the loop looks at the room itself once it has the answer
      if (!this.claiming && this.shouldClaimAfter(webhookId)) this.wake();
    });
    this.sending.set(event.id, done);
  }

  /** Sends one attempt; never throws (a request that could not even be built is a failure). */
  private async attempt(event: ClaimedEvent): Promise<AttemptOutcome> {
    const sentAt = this.o.clock.now();
    let result: SendResult;
    try {
      result = await this.o.sender.send(buildRequest(event, sentAt, this.o.requestTimeoutMs));
      if (result.timedOut) this.windows.timedOut(event.webhook.id);
      else if (result.status !== null) this.windows.answered(event.webhook.id, result.durationMs);
    } catch (caught) {
      result = {
        status: null,
        content: `Request failed: ${toError(caught).message}`,
        durationMs: 0,
      };
    }
    return outcomeOf(event, sentAt, result, false, this.id);
  }

  /**
   * Flushes after a short tick, or at once when a full batch waits. Under load a second
   * flush may run beside the first, so recording keeps up with sending.
   *
   * An attempt of a webhook with `max_concurrency` or `ordered` is recorded at once too:
   * its lease counts against the limit until then, and a claim through the gate finds
   * room for that webhook only after the record. Waiting for the tick held such a
   * webhook to a round of `max_concurrency` events per tick and claim: 1,482 events/s
   * drained with max_concurrency 50 (`bench/backlog-probe.ts`, the webhook's config set).
   */
  private scheduleFlush(): void {
    const full = this.pending.length >= this.o.batchSize;
    const soon = full || this.prompt;
    if (this.flushTimer) {
      if (!soon || this.flushTimerSoon || this.flushBackoffMs > 0) return;
      this.flushTimer();
      this.flushTimer = undefined;
    }
    if (this.flushing.size >= (full && this.flushBackoffMs === 0 ? MAX_FLUSHES : 1)) return;
    const delayMs = Math.max(soon ? 0 : this.flushIntervalMs, this.flushBackoffMs);
    this.flushTimerSoon = delayMs === 0;
    this.flushTimer = runAfter(delayMs, () => {
      this.flushTimer = undefined;
      const flush: Promise<void> = this.flush().finally(() => {
        this.flushing.delete(flush);
        if (this.pending.length > 0) this.scheduleFlush();
      });
      this.flushing.add(flush);
      if (this.pending.length > 0) this.scheduleFlush();
    });
  }

  /** Records what has finished, in one statement; on failure keeps it for the next try. */
  private async flush(): Promise<void> {
    const batch = this.pending.splice(0, this.o.batchSize);
    this.prompt = this.pending.some((f) => countsLeases(f.event.webhook.config));
    if (batch.length === 0) return;
    try {
      await recordAttempts(
        this.o.db,
        this.id,
        batch.map((f) => f.outcome),
      );
    } catch (caught) {
      this.pending.unshift(...batch);
      this.prompt ||= batch.some((f) => countsLeases(f.event.webhook.config));
      this.flushBackoffMs = backoffAfter(this.flushBackoffMs);
      this.o.logger.error(
        { err: toError(caught), attempts: batch.length, backoffMs: this.flushBackoffMs },
        'recording attempts failed; backing off',
      );
      return;
    }
    this.flushBackoffMs = 0;
    this.afterRecord(batch);
    // Recording released leases: a limited or ordered webhook may have its next event, and
    // a failed attempt's event may be due again at once. A claim after a batch of plain
    // deliveries would find nothing the loop is not already waiting for.
    const freed = batch.some(
      (f) => f.outcome.next.kind !== 'done' || hasSharedLimit(f.event.webhook.config),
    );
    if (this.running && freed) this.wake();
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
