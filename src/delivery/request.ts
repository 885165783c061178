import { standardSignature, whispererSignature } from '../core/signature.js';
import type { ClaimedEvent } from '../queue/claim.js';

export interface OutgoingRequest {
  url: string;
  body: string;
  headers: Record<string, string>;
  timeoutMs: number;
}

export const USER_AGENT = 'oms-hooks/0.1';

/**
 * The HTTP request for one attempt. The webhook's own headers go first so that nothing
 * it sets can replace the content type or a signature. `webhook-id` is the event uuid
 * on every attempt (receivers de-duplicate on it); the timestamp is fresh each time.
 */
export function buildRequest(
  event: ClaimedEvent,
  nowMs: number,
  defaultTimeoutMs: number,
): OutgoingRequest {
  const { webhook, body } = event;
  const timestamp = Math.floor(nowMs / 1000);
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(webhook.additionalHeaders ?? {})) {
    headers[name.toLowerCase()] = String(value);
  }
  const auth = webhook.config.auth as
    { type?: string; username?: string; password?: string } | undefined;
  if (auth?.type === 'basic' && typeof auth.username === 'string') {
    headers.authorization = `Basic ${Buffer.from(`${auth.username}:${auth.password ?? ''}`).toString('base64')}`;
  }
  Object.assign(headers, {
    'content-type': 'application/json',
    'user-agent': USER_AGENT,
    'x-whisperer-event': event.eventType,
    'x-whisperer-signature': whispererSignature(webhook.secretKey, body),
    'webhook-id': event.uuid,
    'webhook-timestamp': String(timestamp),
    'webhook-signature': standardSignature(webhook.secretKey, event.uuid, timestamp, body),
  });
  const timeout = webhook.config.timeout;
  const timeoutMs =
    typeof timeout === 'number' && timeout > 0
      ? Math.min(timeout * 1000, 60_000)
      : defaultTimeoutMs;
  return { url: webhook.targetUrl, body, headers, timeoutMs };
}
