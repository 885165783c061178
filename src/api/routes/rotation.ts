import { Type } from 'typebox';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { isoMicro } from '../../core/clock.js';
import { AppError } from '../../core/errors.js';
import { generateSecret } from '../../core/signature.js';
import { rotateSecret } from '../../store/secrets.js';
import type { ApiDeps } from '../app.js';
import { scopeOf } from '../auth.js';
import { errorResponses, IdParams, Webhook } from '../schemas.js';
import { ownWebhookFirst } from './webhooks.js';

const RotateBody = Type.Object({
  grace_hours: Type.Optional(
    Type.Number({ minimum: 0, maximum: 720, description: 'How long the old secret keeps signing' }),
  ),
  secret_key: Type.Optional(Type.String({ minLength: 1, maxLength: 512 })),
});

/**
 * `POST /api/v1/oms/webhooks/{id}/rotate-secret/`: a new secret (given or generated)
 * signs at once; the old one signs too, next to it, for `grace_hours` (default 24).
 */
export async function rotationRoutes(app: FastifyInstance, deps: ApiDeps): Promise<void> {
  const { db, clock, lookups } = deps;
  const r = app.withTypeProvider<TypeBoxTypeProvider>();

  r.post('/api/v1/oms/webhooks/:id/rotate-secret/', {
    preValidation: ownWebhookFirst(db),
    schema: {
      tags: ['webhooks'],
      summary: 'Rotate the signing secret; the old one keeps signing during a grace period',
      params: IdParams,
      body: RotateBody,
      response: {
        200: Type.Intersect([Webhook, Type.Object({ previous_secret_expires_at: Type.String() })]),
        ...errorResponses,
      },
    },
    handler: async (request) => {
      const body = request.body ?? {}; // an empty POST rotates with the defaults
      const graceMs = (body.grace_hours ?? 24) * 3_600_000;
      const rotated = await rotateSecret(
        db,
        scopeOf(request),
        request.params.id,
        body.secret_key ?? generateSecret(),
        isoMicro(clock.now() + graceMs),
      ).finally(() => lookups.webhookChanged(request.params.id));
      if (!rotated) throw AppError.notFound();
      return rotated;
    },
  });
}
