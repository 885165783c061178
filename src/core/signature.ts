import { createHmac, randomBytes } from 'node:crypto';

/**
 * Signing of outgoing requests.
 * - Standard Webhooks: `webhook-signature: v1,<base64 HMAC-SHA256(key, "id.timestamp.body")>`,
 *   where the key is the base64 part of a `whsec_` secret, else the secret's UTF-8 bytes.
 * - Legacy OMS receivers: `X-Whisperer-Signature: sha256=<hex HMAC-SHA256(secret, body)>`.
 */
const WHSEC = 'whsec_';

export function generateSecret(): string {
  return WHSEC + randomBytes(24).toString('base64');
}

export function signingKey(secret: string): Buffer {
  if (secret.startsWith(WHSEC)) {
    const decoded = Buffer.from(secret.slice(WHSEC.length), 'base64');
    if (decoded.length > 0) return decoded;
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

export function whispererSignature(secret: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}
