import { isoMicro, type Clock } from '../core/clock.js';
import { claimForResend } from '../queue/claim.js';
import { recordAttempts, type AttemptOutcome } from '../queue/record.js';
import type { Db } from '../store/db.js';
import { sendCallback } from './callback.js';
import { buildRequest } from './request.js';
import type { Sender } from './sender.js';
import { outcomeOf } from './worker.js';

export interface ResendDeps {
  db: Db;
  clock: Clock;
  sender: Sender;
  leaseMs: number;
  requestTimeoutMs: number;
  defaultMaxRetries: number;
}

/**
 * One manual attempt through the same sender the workers use, recorded like any other.
 * A failure leaves the event's retry schedule as it was; a success ends it. While a
 * worker is attempting the same event, nothing is sent and the answer is 'busy'.
 */
export async function resendOnce(
  deps: ResendDeps,
  eventId: number,
): Promise<AttemptOutcome | 'busy' | undefined> {
  const owner = `resend-${eventId}-${Math.random().toString(36).slice(2, 8)}`;
  const event = await claimForResend(
    deps.db,
    eventId,
    { workerId: owner, now: isoMicro(deps.clock.now()), leaseMs: deps.leaseMs },
    deps.defaultMaxRetries,
  );
  if (!event || event === 'busy') return event;
  const sentAt = deps.clock.now();
  const result = await deps.sender.send(buildRequest(event, sentAt, deps.requestTimeoutMs));
  const outcome = outcomeOf(event, sentAt, result, true, owner);
  await recordAttempts(deps.db, owner, [outcome]);
  // after every attempt, manual ones too; the answer does not wait for it
  void sendCallback(deps.sender, event, outcome, deps.clock.now(), deps.requestTimeoutMs);
  return outcome;
}
