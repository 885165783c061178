import { Type } from 'typebox';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { isoMicro } from '../../core/clock.js';
import { AppError } from '../../core/errors.js';
import { requeueUndelivered, type RequeueFilters } from '../../queue/requeue.js';
import type { AppDeps } from '../app.js';
import { scopeOf } from '../auth.js';
import { INT4_MAX } from '../../store/db.js';
import { errorResponses } from '../schemas.js';

const IsoDate = Type.String({
  maxLength: 64,
  description: 'ISO-8601 date or date-time; without an offset it is UTC',
});
const BulkResendBody = Type.Object({
  webhook: Type.Optional(Type.Integer({ minimum: 1, maximum: INT4_MAX })),
  event_type: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
  since: Type.Optional(IsoDate),
  until: Type.Optional(IsoDate),
});

const ISO =
  /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(\.\d{1,6})?)?(Z|[+-]\d{2}:?\d{2})?)?$/;

/**
 * An ISO date as a literal PostgreSQL reads the same whatever its time zone, or
 * undefined when it names no real instant (2024-02-30, 25:00).
 */
function isoInstant(value: string): string | undefined {
  const m = ISO.exec(value);
  if (!m) return undefined;
  const [, y, mo, d, h = '00', mi = '00', s = '00', frac = '', zone = 'Z'] = m;
  const day = new Date(Date.UTC(Number(y), Number(mo) - 1, Number(d)));
  if (day.getUTCMonth() !== Number(mo) - 1 || day.getUTCDate() !== Number(d)) return undefined;
  if (Number(h) > 23 || Number(mi) > 59 || Number(s) > 59) return undefined;
  const literal = `${y}-${mo}-${d}T${h}:${mi}:${s}${frac}${zone}`;
  return Number.isNaN(Date.parse(literal.replace(/(\.\d{3})\d+/, '$1'))) ? undefined : literal;
}

/** Recovery after an outage: put undelivered events back in the queue in bulk. */
export async function recoveryRoutes(app: FastifyInstance, deps: AppDeps): Promise<void> {
  const { db, clock, config } = deps;
  const r = app.withTypeProvider<TypeBoxTypeProvider>();

  r.post('/api/v1/oms/oms_hook_events/bulk-resend/', {
    schema: {
      tags: ['hook events'],
      summary:
        'Queue undelivered events again, with a fresh attempt budget; answers how many were queued',
      body: Type.Optional(BulkResendBody),
      response: { 202: Type.Object({ count: Type.Integer() }), ...errorResponses },
    },
    handler: async (request, reply) => {
      const body = request.body ?? {};
      const filters: RequeueFilters = {};
      const errors: Record<string, string[]> = {};
      if (body.webhook !== undefined) filters.webhook = body.webhook;
      if (body.event_type !== undefined) filters.event_type = body.event_type;
      for (const key of ['since', 'until'] as const) {
        const value = body[key];
        if (value === undefined) continue;
        const at = isoInstant(value);
        if (at) filters[key] = at;
        else errors[key] = ['Enter a valid date/time.'];
      }
      if (Object.keys(errors).length > 0) throw AppError.validation(errors);
      const count = await db.transaction((tx) =>
        requeueUndelivered(
          tx,
          scopeOf(request),
          filters,
          isoMicro(clock.now()),
          config.defaultMaxRetries,
        ),
      );
      return reply.code(202).send({ count });
    },
  });
}
