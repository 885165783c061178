import { Type } from 'typebox';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { AppError } from '../../core/errors.js';
import { createToken, ensureUser, listTokens, revokeToken } from '../../store/tokens.js';
import type { ApiDeps } from '../app.js';
import { adminOnly } from '../auth.js';
import { Empty, errorResponses, IdParams, Token } from '../schemas.js';

const BASE = '/api/v1/oms/tokens';

const CreateBody = Type.Object({
  username: Type.String({ minLength: 1, maxLength: 150, pattern: '^[A-Za-z0-9@.+_-]+$' }),
  is_admin: Type.Optional(Type.Boolean()),
  name: Type.Optional(Type.String({ maxLength: 200 })),
  scope: Type.Optional(
    Type.Union([Type.Literal('read'), Type.Literal('write'), Type.Literal('admin')], {
      description: 'read: GET only; write: own resources; admin: everything (makes the user admin)',
    }),
  ),
});

/** API tokens (admin only). The key is in the creation response and nowhere else. */
export async function tokenRoutes(app: FastifyInstance, deps: ApiDeps): Promise<void> {
  const { db, lookups } = deps;
  const r = app.withTypeProvider<TypeBoxTypeProvider>();

  r.get(`${BASE}/`, {
    preValidation: adminOnly,
    schema: {
      tags: ['tokens'],
      summary: 'List tokens (admin); keys are never shown',
      response: { 200: Type.Array(Token), ...errorResponses },
    },
    handler: () => listTokens(db),
  });

  r.post(`${BASE}/`, {
    preValidation: adminOnly,
    schema: {
      tags: ['tokens'],
      summary: 'Create a token, and its user if new (admin); the key is shown once',
      body: CreateBody,
      response: {
        201: Type.Intersect([Token, Type.Object({ key: Type.String() })]),
        ...errorResponses,
      },
    },
    handler: async (request, reply) => {
      const { username, is_admin: isAdmin, name, scope } = request.body;
      const { key, info } = await ensureUser(db, username, (isAdmin ?? false) || scope === 'admin')
        .then((user) => createToken(db, user.id, name ?? '', scope))
        // ensureUser may have made the user an admin, which their cached tokens must show.
        .finally(() => lookups.tokensChanged());
      return reply.code(201).send({ ...info, key });
    },
  });

  r.delete(`${BASE}/:id/`, {
    preValidation: adminOnly,
    schema: {
      tags: ['tokens'],
      summary: 'Revoke a token (admin)',
      params: IdParams,
      response: { 204: Empty, ...errorResponses },
    },
    handler: async (request, reply) => {
      // Refused from the next request on; a revocation by the CLI or another API process
      // takes up to LOOKUP_TTL_MS, the life of a cached token here.
      const revoked = await revokeToken(db, request.params.id).finally(() =>
        lookups.tokensChanged(),
      );
      if (!revoked) throw AppError.notFound();
      return reply.code(204).send();
    },
  });
}
