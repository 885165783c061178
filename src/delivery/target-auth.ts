import { createHash } from 'node:crypto';
import type { Dispatcher } from 'undici';
import { toError } from '../core/errors.js';

/**
 * Token authentication against the target, as the OMS library does it: a token is
 * fetched from an auth URL with credentials, kept per webhook, sent in a header, and
 * fetched once more when the target answers 401 (it expired or was revoked).
 *
 * `{"type": "token", "url", "username"?, "password"?, "body"?, "token_field"? = "token",
 *   "header"? = "Authorization", "format"? = "Token {token}"}`; the credentials are
 * POSTed as JSON: `body` when given, else `{username, password}`.
 */
export interface TokenAuth {
  url: string;
  username?: string;
  password?: string;
  body?: Record<string, unknown>;
  tokenField: string;
  header: string;
  format: string;
}

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** What is wrong with a `config.auth` of type token, if anything. */
export function tokenAuthErrors(auth: Record<string, unknown>): string[] {
  const errors: string[] = [];
  const isString = (v: unknown) => v === undefined || typeof v === 'string';
  let url: URL | undefined;
  try {
    url = typeof auth.url === 'string' ? new URL(auth.url) : undefined;
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:'))
    errors.push('Token auth needs an http(s) "url" to fetch the token from.');
  if (!isString(auth.username) || !isString(auth.password))
    errors.push('"username" and "password" must be strings.');
  if (
    auth.body !== undefined &&
    (typeof auth.body !== 'object' || auth.body === null || Array.isArray(auth.body))
  )
    errors.push('"body" must be a dictionary.');
  if (!isString(auth.token_field) || auth.token_field === '')
    errors.push('"token_field" must be a non-empty string.');
  if (
    auth.header !== undefined &&
    (typeof auth.header !== 'string' || !HEADER_NAME.test(auth.header))
  )
    errors.push('"header" must be a header name.');
  if (
    auth.format !== undefined &&
    (typeof auth.format !== 'string' ||
      !auth.format.includes('{token}') ||
      /[\r\n]/.test(auth.format))
  )
    errors.push('"format" must be one line containing "{token}".');
  return errors;
}

export function parseTokenAuth(auth: unknown): TokenAuth | undefined {
  if (typeof auth !== 'object' || auth === null) return undefined;
  const a = auth as Record<string, unknown>;
  if (a.type !== 'token' || typeof a.url !== 'string') return undefined;
  return {
    url: a.url,
    ...(typeof a.username === 'string' ? { username: a.username } : {}),
    ...(typeof a.password === 'string' ? { password: a.password } : {}),
    ...(typeof a.body === 'object' && a.body !== null
      ? { body: a.body as Record<string, unknown> }
      : {}),
    tokenField: typeof a.token_field === 'string' ? a.token_field : 'token',
    header: typeof a.header === 'string' ? a.header : 'Authorization',
    format: typeof a.format === 'string' ? a.format : 'Token {token}',
  };
}

/** The failure of a token fetch; its message never holds a credential or the token. */
export class TokenFetchError extends Error {
  override name = 'TokenFetchError';
  readonly code = 'ERR_TOKEN_FETCH';
}

/**
 * undici's client for the requests made outside attempts (token fetches, content types'
 * source URLs). The sender loads undici only when the first of them is made: most
 * services never make one, and loaded it holds about 3.5 MB of every process's heap.
 */
export interface OutsideClient {
  dispatcher: Dispatcher;
  request: typeof import('undici').request;
}

async function fetchToken(
  auth: TokenAuth,
  client: () => Promise<OutsideClient>,
  timeoutMs: number,
): Promise<string> {
  const body = auth.body ?? { username: auth.username, password: auth.password };
  let status: number;
  let text: string;
  try {
    const { dispatcher, request } = await client();
    const res = await request(auth.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify(body),
      dispatcher,
      signal: AbortSignal.timeout(timeoutMs),
    });
    status = res.statusCode;
    text = await res.body.text();
  } catch (caught) {
    const error = toError(caught) as Error & { code?: string };
    // A refusal by the guard reads the same for the auth URL as for the target.
    if (error.code === 'ERR_BLOCKED_TARGET')
      throw new TokenFetchError(`Token URL: ${error.message}`);
    throw new TokenFetchError(
      `Could not fetch a token from the auth URL: ${error.code ?? error.name}`,
    );
  }
  if (status < 200 || status >= 300)
    throw new TokenFetchError(`The auth URL answered ${status} instead of a token`);
  let token: unknown;
  try {
    token = (JSON.parse(text) as Record<string, unknown>)[auth.tokenField];
  } catch {
    token = undefined;
  }
  if (typeof token !== 'string' || token === '' || /[\r\n]/.test(token))
    throw new TokenFetchError(`The auth URL's answer has no "${auth.tokenField}" string`);
  return token;
}

/**
 * Tokens per webhook. The key includes a hash of the auth settings, so editing them
 * fetches a new token; concurrent attempts of one webhook share one fetch.
 */
export class TokenCache {
  private readonly tokens = new Map<string, Promise<string>>();

  constructor(private readonly client: () => Promise<OutsideClient>) {}

  static keyOf(webhookId: number, auth: TokenAuth): string {
    return `${webhookId}:${createHash('sha256').update(JSON.stringify(auth)).digest('hex')}`;
  }

  get(key: string, auth: TokenAuth, timeoutMs: number): Promise<string> {
    let token = this.tokens.get(key);
    if (!token) {
      token = fetchToken(auth, this.client, timeoutMs);
      this.tokens.set(key, token);
      // a failed fetch is not remembered: the next attempt tries again
      token.catch(() => {
        if (this.tokens.get(key) === token) this.tokens.delete(key);
      });
    }
    return token;
  }

  /** Forgets a token the target refused, unless another attempt already replaced it. */
  invalidate(key: string, refused: Promise<string>): void {
    if (this.tokens.get(key) === refused) this.tokens.delete(key);
  }
}

export function authHeader(auth: TokenAuth, token: string): [string, string] {
  return [auth.header.toLowerCase(), auth.format.replaceAll('{token}', token)];
}
