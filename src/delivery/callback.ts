import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { toError } from '../core/errors.js';
import { standardSignature, whispererSignature } from '../core/signature.js';
import type { ClaimedEvent } from '../queue/claim.js';
import type { AttemptOutcome } from '../queue/record.js';
import { USER_AGENT } from './request.js';
import type { Sender } from './sender.js';

/** What a webhook's `callback` URL receives after every attempt. */
export interface CallbackBody {
  event: string;
  webhook: number;
  status: number | null;
  delivered: boolean;
  retry_count: number;
}

export const CALLBACK_EVENT = 'hook_event.attempt';

/** A callback is a courtesy: it never holds a worker slot longer than this. */
export const CALLBACK_TIMEOUT_MS = 5_000;

/**
 * A signed POST to a webhook's `callback`: through the sender, so the SSRF guard applies
 * as to any delivery, and signed with the webhook's secret like one. Each callback is a
 * message of its own (`webhook-id` msg_...), so a receiver de-duplicating deliveries on
 * the event uuid still gets every callback. Never throws: a callback that fails or hangs
 * is logged and changes nothing.
 */
export async function postCallback(
  sender: Sender,
  callback: { url: string; secret: string; eventName: string; body: string },
  nowMs: number,
  timeoutMs: number,
  logger: Logger | undefined,
  context: Record<string, unknown>,
): Promise<void> {
  const { url, secret, eventName, body } = callback;
  const id = `msg_${randomUUID().replaceAll('-', '')}`;
  const timestamp = Math.floor(nowMs / 1000);
  try {
    const result = await sender.send({
      url,
      body,
      timeoutMs: Math.min(timeoutMs, CALLBACK_TIMEOUT_MS),
      headers: {
        'content-type': 'application/json',
        'user-agent': USER_AGENT,
        'x-whisperer-event': eventName,
        'x-whisperer-signature': whispererSignature(secret, body),
        'webhook-id': id,
        'webhook-timestamp': String(timestamp),
        'webhook-signature': standardSignature(secret, id, timestamp, body),
      },
    });
    if (result.status === null || result.status >= 300) {
      logger?.warn(
        {
          ...context,
          status: result.status,
          error: result.status === null ? result.content : undefined,
        },
        `${eventName} callback failed`,
      );
    }
  } catch (caught) {
    logger?.warn({ ...context, err: toError(caught) }, `${eventName} callback failed`);
  }
}

/** Tells the webhook's callback how an attempt went. */
export async function sendCallback(
  sender: Sender,
  event: ClaimedEvent,
  outcome: AttemptOutcome,
  nowMs: number,
  timeoutMs: number,
  logger?: Logger,
): Promise<void> {
  const url = event.webhook.callback;
  if (!url) return;
  const payload: CallbackBody = {
    event: event.uuid,
    webhook: event.webhook.id,
    status: outcome.status,
    delivered: outcome.delivered,
    retry_count: event.retryCount + 1,
  };
  await postCallback(
    sender,
    {
      url,
      secret: event.webhook.secretKey,
      eventName: CALLBACK_EVENT,
      body: JSON.stringify(payload),
    },
    nowMs,
    timeoutMs,
    logger,
    { event: event.uuid, webhook: event.webhook.id },
  );
}
