import type { FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../core/errors.js';
import type { Db } from '../store/db.js';
import { authenticate, type User } from '../store/tokens.js';
import type { Scope } from '../store/webhooks.js';

declare module 'fastify' {
  interface FastifyRequest {
    user: User | undefined;
  }
}

/** `Authorization: Token <key>` (DRF's scheme); `Bearer <key>` is accepted too. */
export function authHook(db: Db) {
  return async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const header = request.headers.authorization;
    if (!header) {
      reply.header('www-authenticate', 'Token');
      throw AppError.unauthenticated();
    }
    const match = /^(?:Token|Bearer)\s+(\S+)\s*$/i.exec(header);
    const user = match ? await authenticate(db, match[1]!) : undefined;
    if (!user) {
      reply.header('www-authenticate', 'Token');
      throw new AppError(401, 'invalid_token', 'Invalid token.');
    }
    request.user = user;
  };
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
