import { toError } from '../core/errors.js';
import { Http1Agent, type ResponseHeaders } from './http1.js';
import type { OutgoingRequest } from './request.js';
import { TargetGuard, type Resolver } from './ssrf.js';
import { authHeader, TokenCache, type OutsideClient } from './target-auth.js';

export interface SendResult {
  /** HTTP status, or null when no response arrived (refused, timed out, reset). */
  status: number | null;
  /** The response body up to the cap, or a readable reason when there was no response. */
  content: string;
  durationMs: number;
  /** The target's Retry-After (seconds or an HTTP date) in ms from now, when it sent one. */
  retryAfterMs?: number;
  /** No answer came within the timeout (the connection included): the target may hang. */
  timedOut?: boolean;
}

export interface SenderOptions {
  responseCapBytes: number;
  /**
   * Turns the SSRF guard off (local testing). The guard is on unless this is true, so a
   * sender built without it is safe by default.
   */
  allowPrivateTargets?: boolean;
  /** Ranges permitted even though they are private (ALLOWED_TARGET_CIDRS). */
  allowedTargetCidrs?: readonly string[];
  /**
   * Most connections to one origin (default 64). Give it at least the worker's
   * concurrency: webhooks often share a host, and a hanging one must not hold the
   * sockets the others need.
   */
  connectionsPerOrigin?: number;
  /** Name resolution for targets; tests inject answers to prove what the guard refuses. */
  lookup?: Resolver;
}

/** A GET through the guarded pool (content-type source URLs). */
export interface FetchResult {
  status: number;
  text: string;
}

/**
 * Sends attempts over a keep-alive connection pool. Redirects are never followed (the
 * 3xx is the outcome). The body is read only up to the cap and the connection dropped
 * after it, so a huge or endless response costs bounded memory and time; the timeout
 * covers the whole exchange, body included.
 *
 * Every connection goes through the SSRF guard: names resolve through its `lookup`
 * (the socket connects to the very address it checked), literal addresses are checked
 * before the request. TLS certificates are verified by both clients; no option here or
 * in the config turns that off.
 */
export class Sender {
  /** Attempts' POSTs (see http1.ts for why not undici). */
  private readonly http1: Http1Agent;
  /** The rare requests: token endpoints and content types' source URLs (OutsideClient). */
  private outside: Promise<OutsideClient> | undefined;
  readonly guard: TargetGuard;
  private readonly tokens: TokenCache;

  constructor(private readonly options: SenderOptions) {
    this.guard = new TargetGuard({
      allowPrivateTargets: options.allowPrivateTargets ?? false,
      allowedTargetCidrs: options.allowedTargetCidrs ?? [],
      ...(options.lookup ? { lookup: options.lookup } : {}),
    });
    this.http1 = new Http1Agent({
      connectionsPerOrigin: options.connectionsPerOrigin ?? 64,
      keepAliveMs: 10_000,
      lookup: this.guard.lookup,
    });
    this.tokens = new TokenCache(this.client);
  }

  /** undici and its pool, loaded and made at the first request outside an attempt. */
  private readonly client = (): Promise<OutsideClient> =>
    (this.outside ??= import('undici').then(({ Agent, request }) => ({
      dispatcher: new Agent({
        keepAliveTimeout: 10_000,
        connections: this.options.connectionsPerOrigin ?? 64,
        connect: { lookup: this.guard.lookup, rejectUnauthorized: true },
      }),
      request,
    })));

  async send(req: OutgoingRequest): Promise<SendResult> {
    const started = performance.now();
    // one deadline for the whole exchange, a token refetch and its second POST included
    const deadline = started + req.timeoutMs;
    try {
      const url = new URL(req.url);
      const refused = this.guard.checkUrl(url);
      if (refused)
        return { status: null, content: refused, durationMs: performance.now() - started };
      let res = await this.post(req, url, deadline);
      if (res.status === 401 && req.tokenAuth && res.usedToken) {
        // The token expired or was revoked: fetch a new one, once.
        this.tokens.invalidate(req.tokenAuth.key, res.usedToken);
        res = await this.post(req, url, deadline);
      }
      const retryAfterMs = parseRetryAfter(res.headers['retry-after'], Date.now());
      return {
        status: res.status,
        content: res.content,
        durationMs: performance.now() - started,
        ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
      };
    } catch (caught) {
      const error = toError(caught);
      return {
        status: null,
        content: describeFailure(error, req.timeoutMs),
        durationMs: performance.now() - started,
        ...(isTimeout(error) ? { timedOut: true } : {}),
      };
    }
  }

  /** GETs a URL through the guard; throws (a readable message) when nothing came back. */
  async fetch(
    url: string,
    headers: Record<string, string>,
    timeoutMs: number,
  ): Promise<FetchResult> {
    const refused = this.guard.checkUrl(url);
    if (refused) throw new Error(refused);
    try {
      const { dispatcher, request } = await this.client();
      const res = await request(url, {
        method: 'GET',
        headers,
        dispatcher,
        signal: AbortSignal.timeout(timeoutMs),
      });
      return { status: res.statusCode, text: await res.body.text() };
    } catch (caught) {
      throw new Error(describeFailure(caught, timeoutMs));
    }
  }

  private async post(req: OutgoingRequest, url: URL, deadline: number): Promise<Posted> {
    let headers = req.headers;
    let usedToken: Promise<string> | undefined;
    if (req.tokenAuth) {
      usedToken = this.tokens.get(req.tokenAuth.key, req.tokenAuth.auth, req.timeoutMs);
      const [name, value] = authHeader(req.tokenAuth.auth, await usedToken);
      headers = { ...headers, [name]: value };
    }
    const cap = this.options.responseCapBytes;
    const response = await this.http1.post({
      url,
      headers,
      body: req.body,
      cap,
      timeoutMs: deadline - performance.now(),
    });
    return {
      status: response.status,
      headers: response.headers,
      content: decodeCapped(response.body, cap),
      usedToken,
    };
  }

  async close(): Promise<void> {
    await this.http1.close();
    if (this.outside) await (await this.outside).dispatcher.close();
  }
}

/** Retry-After as delay-seconds or an HTTP date; undefined when absent or unreadable. */
export function parseRetryAfter(
  value: string | string[] | undefined,
  nowMs: number,
): number | undefined {
  const raw = Array.isArray(value) ? value[0] : value;
  if (!raw) return undefined;
  const trimmed = raw.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const at = Date.parse(trimmed);
  return Number.isNaN(at) ? undefined : Math.max(0, at - nowMs);
}

interface Posted {
  status: number;
  headers: ResponseHeaders;
  content: string;
  usedToken?: Promise<string> | undefined;
}

/** The body read so far as text a PostgreSQL column can hold, at most `cap` bytes. */
function decodeCapped(body: Buffer, cap: number): string {
  // PostgreSQL text cannot hold NUL; a binary body is kept as readable as it gets.
  const text = body.toString('utf8').replaceAll('\u0000', '\uFFFD');
  return utf8Prefix(text, cap);
}

/**
 * The longest prefix of `text` that is at most `cap` bytes of UTF-8. Decoding can grow a
 * body (a character cut by the cap, or invalid bytes, become 3-byte U+FFFD), so the text
 * is cut again, at a character boundary, to keep the stored content within the cap.
 */
function utf8Prefix(text: string, cap: number): string {
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length <= cap) return text;
  let end = cap;
  // bytes[end] is the first byte left out; step back over the character it belongs to
  while (end > 0 && ((bytes[end] ?? 0) & 0xc0) === 0x80) end--;
  return bytes.subarray(0, end).toString('utf8');
}

function codeOf(error: Error): string | undefined {
  return (error as { code?: string }).code ?? (error.cause as { code?: string } | undefined)?.code;
}

function isTimeout(error: Error): boolean {
  const code = codeOf(error);
  return (
    error.name === 'TimeoutError' ||
    code === 'UND_ERR_HEADERS_TIMEOUT' ||
    code === 'UND_ERR_BODY_TIMEOUT'
  );
}

function describeFailure(caught: unknown, timeoutMs: number): string {
  const error = toError(caught);
  const code = codeOf(error);
  if (isTimeout(error)) return `Timed out after ${timeoutMs} ms`;
  // The guard's and the token fetch's messages are written to be shown as they are.
  if (code === 'ERR_BLOCKED_TARGET' || code === 'ERR_TOKEN_FETCH') {
    return (error as { code?: string }).code === code
      ? error.message
      : String((error.cause as Error).message);
  }
  if (code === 'ECONNREFUSED') return 'Connection refused';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'Host name could not be resolved';
  if (code === 'ECONNRESET' || code === 'EPIPE' || code === 'UND_ERR_SOCKET')
    return 'Connection reset by the target';
  // http1.ts words these for the record: which header, or what was wrong with the answer
  if (code === 'ERR_INVALID_HEADER') return error.message;
  if (code === 'ERR_BAD_RESPONSE') return `Invalid HTTP response: ${error.message}`;
  if (code?.startsWith('ERR_TLS') || code?.includes('CERT')) return `TLS error: ${code}`;
  return `Request failed: ${code ?? error.message}`;
}
