import {
  SIGNATURE_MODES,
  standardSignatures,
  whispererSignature,
  type SignatureMode,
} from '../core/signature.js';
import type { ClaimedEvent } from '../queue/claim.js';
import { parseTokenAuth, TokenCache, type TokenAuth } from './target-auth.js';

export interface OutgoingRequest {
  url: string;
  body: string;
  headers: Record<string, string>;
  timeoutMs: number;
  /** Token auth: the sender fetches (and caches under `key`) the token to send. */
  tokenAuth?: { key: string; auth: TokenAuth };
}

export const USER_AGENT = 'oms-hooks/0.1';

/** The secrets that sign at `nowMs`: the current one, then a rotated one still in grace. */
export function signingSecrets(webhook: ClaimedEvent['webhook'], nowMs: number): string[] {
  const secrets = [webhook.secretKey];
  const previous = webhook.previousSecretKey;
  const expires = webhook.previousSecretExpiresAt ? Date.parse(webhook.previousSecretExpiresAt) : 0;
  if (previous && previous !== webhook.secretKey && expires > nowMs) secrets.push(previous);
  return secrets;
}

function signatureMode(config: Record<string, unknown>): SignatureMode {
  const mode = config.signature;
  return SIGNATURE_MODES.includes(mode as SignatureMode) ? (mode as SignatureMode) : 'both';
}

/** How long an attempt to this webhook may take: `config.timeout` seconds, at most 60. */
export function requestTimeoutOf(webhook: ClaimedEvent['webhook'], defaultMs: number): number {
  const timeout = webhook.config.timeout;
  return typeof timeout === 'number' && timeout > 0 ? Math.min(timeout * 1000, 60_000) : defaultMs;
}

/**
 * The HTTP request for one attempt. The webhook's own headers go first so that nothing
 * it sets can replace the content type or a signature. `webhook-id` is the event uuid
 * on every attempt (receivers de-duplicate on it); the timestamp is fresh each time.
 * The legacy signature has room for one secret only, so it always uses the current one.
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
  const tokenAuth = parseTokenAuth(auth);
  const mode = signatureMode(webhook.config);
  headers['content-type'] = 'application/json';
  headers['user-agent'] = USER_AGENT;
  headers['x-whisperer-event'] = event.eventType;
  if (mode !== 'standard') {
    headers['x-whisperer-signature'] = whispererSignature(webhook.secretKey, body);
  }
  headers['webhook-id'] = event.uuid;
  headers['webhook-timestamp'] = String(timestamp);
  if (mode !== 'whisperer') {
    headers['webhook-signature'] = standardSignatures(
      signingSecrets(webhook, nowMs),
      event.uuid,
      timestamp,
      body,
    );
  }
  const timeoutMs = requestTimeoutOf(webhook, defaultTimeoutMs);
  return {
    url: webhook.targetUrl,
    body,
    headers,
    timeoutMs,
    ...(tokenAuth
      ? { tokenAuth: { key: TokenCache.keyOf(webhook.id, tokenAuth), auth: tokenAuth } }
      : {}),
  };
}
