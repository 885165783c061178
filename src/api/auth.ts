import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Clock } from '../core/clock.js';
import { AppError } from '../core/errors.js';
import type { User } from '../store/tokens.js';
import type { Scope } from '../store/webhooks.js';
import type { Lookups } from './lookups.js';
import { RateLimiter } from './rate-limit.js';

declare module 'fastify' {
  interface FastifyRequest {
    user: User | undefined;
  }
}

export const MASK = '********';
const READ_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * `Authorization: Token <key>` (DRF's scheme); `Bearer <key>` is accepted too. Then the
 * token's scope (a read token may only read) and its rate limit (429 with Retry-After).
 * A token is looked up through the app's Lookups: one revoked through this API is
 * refused at once, one revoked elsewhere (the CLI) within LOOKUP_TTL_MS.
 */
export function authHook(
  lookups: Pick<Lookups, 'authenticate'>,
  limits?: { rateLimitPerSecond: number; clock: Clock },
) {
  const limiter = limits ? new RateLimiter(limits.rateLimitPerSecond, limits.clock) : undefined;
  return async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const header = request.headers.authorization;
    if (!header) {
      reply.header('www-authenticate', 'Token');
      throw AppError.unauthenticated();
    }
    const match = /^(?:Token|Bearer)\s+(\S+)\s*$/i.exec(header);
    const user = match ? await lookups.authenticate(match[1]!) : undefined;
    if (!user) {
      reply.header('www-authenticate', 'Token');
      throw new AppError(401, 'invalid_token', 'Invalid token.');
    }
    const wait = limiter && user.tokenId !== undefined ? limiter.take(user.tokenId) : 0;
    if (wait > 0) {
      reply.header('retry-after', String(wait));
      throw new AppError(
        429,
        'throttled',
        `Request was throttled. Expected available in ${wait} seconds.`,
      );
    }
    if (user.scope === 'read' && !READ_METHODS.has(request.method)) {
      throw new AppError(403, 'read_only', 'This token is read-only.');
    }
    request.user = user;
  };
}

/**
 * preSerialization hook: a read-only token sees every `secret_key` masked, wherever
 * the object sits (a webhook, or the webhook inside a hook event).
 */
export async function maskForReadOnly(
  request: FastifyRequest,
  _reply: FastifyReply,
  payload: unknown,
) {
  if (request.user?.scope !== 'read') return payload;
  return maskSecrets(payload);
}

function maskSecrets(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(maskSecrets);
  if (typeof value !== 'object' || value === null) return value;
  const out: Record<string, unknown> = {};
  for (const [key, inner] of Object.entries(value)) {
    if (key === 'request_payload')
      out[key] = inner; // the publisher's data, not our secret
    else out[key] = key === 'secret_key' && typeof inner === 'string' ? MASK : maskSecrets(inner);
  }
  return out;
}

export function userOf(request: FastifyRequest): User {
  if (!request.user) throw AppError.unauthenticated();
  return request.user;
}

export function scopeOf(request: FastifyRequest): Scope {
  const user = userOf(request);
  return { userId: user.id, isAdmin: user.isAdmin };
}

export function requireAdmin(request: FastifyRequest): User {
  const user = userOf(request);
  if (!user.isAdmin) throw AppError.forbidden();
  return user;
}

/**
 * Route hook for admin-only routes: permission is checked before the body is validated,
 * as DRF checks permissions before parsing, so a non-admin learns nothing from a 400.
 */
export async function adminOnly(request: FastifyRequest): Promise<void> {
  requireAdmin(request);
}
