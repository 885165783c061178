import type { ClaimedEvent } from './claim.js';

/**
 * What a worker tells the publishers beside it: how many fresh events it would take
 * straight from a publish now, the webhooks it takes none of (those at its hold cap),
 * and how many handed events it has accepted in all. `room` is 0 while the worker has
 * a backlog to claim: fresh events then queue behind it, so hand-offs never let new
 * events overtake older ones that wait.
 */
export interface HandoffReport {
  workerId: string;
  room: number;
  full: number[];
  accepted: number;
}

/** When handed events were read from the database, and until when they are leased (clock ms). */
export interface HandedLease {
  readAt: number;
  until: number;
}

/** Where a publish may lease its events: a worker, how many, and which webhooks not. */
export interface HandoffOffer {
  workerId: string;
  room: number;
  full: number[];
}

/**
 * A way for publishes to pass freshly committed events to a worker without a claim.
 * The publishing statement leases up to `offer(n).room` of its events to that worker
 * (events of an active webhook without shared limits only), and `settle` hands those
 * over once committed. An event lost on the way keeps its lease until the lease runs
 * out or the worker is found dead, and is then claimed like any other: at least once.
 */
export interface Handoff {
  /**
   * An offer for a statement of `wanted` events: the room it may use, at most that, so
   * that writes in flight side by side share the room instead of the first taking all.
   */
  offer(wanted: number): HandoffOffer | undefined;
  /**
   * Settles an offer: `events` were leased to its worker by a committed statement. Call
   * it with none when the statement failed.
   */
  settle(offer: HandoffOffer, events: ClaimedEvent[], lease: HandedLease): void;
}

/** Messages between a `serve --role all` process and its worker processes. */
export type HandoffMessage =
  | { type: 'handoff-report'; report: HandoffReport }
  | { type: 'handoff'; events: ClaimedEvent[]; lease: HandedLease };

/**
 * The publishing side's account of one worker: what the worker last reported, less
 * what was handed to it since (events sent that its report had not counted yet) and
 * what offers still in flight may hand it. So however stale the report, a worker is
 * never handed more than the room it reported.
 */
export class HandoffCredit implements Handoff {
  private sent = 0;
  private reserved = 0;

  constructor(
    private readonly report: () => HandoffReport | undefined,
    private readonly send: (events: ClaimedEvent[], lease: HandedLease) => void,
  ) {}

  /** Room left on this worker now (0 when it has not reported). */
  available(): number {
    const r = this.report();
    if (!r) return 0;
    return Math.max(0, r.room - (this.sent - r.accepted) - this.reserved);
  }

  offer(wanted: number): HandoffOffer | undefined {
    const r = this.report();
    const room = Math.min(this.available(), wanted);
    if (!r || room === 0) return undefined;
    this.reserved += room;
    return { workerId: r.workerId, room, full: r.full };
  }

  settle(offer: HandoffOffer, events: ClaimedEvent[], lease: HandedLease): void {
    this.reserved -= offer.room;
    if (events.length === 0) return;
    this.sent += events.length;
    this.send(events, lease);
  }
}
