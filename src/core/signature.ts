import { createHmac, randomBytes } from 'node:crypto';

/**
 * Signing of outgoing requests.
 * - Standard Webhooks: `webhook-signature: v1,<base64 HMAC-SHA256(key, "id.timestamp.body")>`,
 *   where the key is the base64 part of a `whsec_` secret, else the secret's UTF-8 bytes.
 *   Several signatures (during a secret rotation) are separated by spaces, as the spec
 *   says; a verifier accepts the request when any of them matches its secret.
 * - Legacy OMS receivers: `X-Whisperer-Signature: sha256=<hex HMAC-SHA256(secret, body)>`.
 */
const WHSEC = 'whsec_';

/** Which headers sign a request (`config.signature`). */
export type SignatureMode = 'standard' | 'whisperer' | 'both';
export const SIGNATURE_MODES: readonly SignatureMode[] = ['standard', 'whisperer', 'both'];

export function generateSecret(): string {
  return WHSEC + randomBytes(24).toString('base64');
}

/**
 * Only well-formed base64 after `whsec_` is decoded. Node's decoder skips characters it
 * does not know, so `whsec_not base64!` would otherwise sign with bytes no receiver's
 * library derives; such a secret is used as its UTF-8 text, as any other.
 */
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

export function signingKey(secret: string): Buffer {
  const encoded = secret.slice(WHSEC.length);
  if (secret.startsWith(WHSEC) && encoded.length > 0 && BASE64.test(encoded)) {
    return Buffer.from(encoded, 'base64');
  }
  return Buffer.from(secret, 'utf8');
}

export function standardSignature(
  secret: string,
  id: string,
  timestampSeconds: number,
  body: string,
): string {
  const mac = createHmac('sha256', signingKey(secret));
  mac.update(`${id}.${timestampSeconds}.${body}`);
  return `v1,${mac.digest('base64')}`;
}

/** The `webhook-signature` value for every secret in use, the current one first. */
export function standardSignatures(
  secrets: readonly string[],
  id: string,
  timestampSeconds: number,
  body: string,
): string {
  return secrets.map((s) => standardSignature(s, id, timestampSeconds, body)).join(' ');
}

export function whispererSignature(secret: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}
