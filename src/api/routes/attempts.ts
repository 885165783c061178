import { Type } from 'typebox';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { AppError } from '../../core/errors.js';
import { listAttempts } from '../../queue/attempts.js';
import type { AppDeps } from '../app.js';
import { scopeOf } from '../auth.js';
import { pageBody, pageOf, PageQuery, pageRequest } from '../pagination.js';
import { errorResponses, EventIdParams } from '../schemas.js';

const Attempt = Type.Object({
  id: Type.Integer(),
  attempted_at: Type.String({ description: 'UTC, microseconds: 2024-02-19T08:12:18.591206Z' }),
  duration_ms: Type.Integer(),
  response_http_status: Type.Union([Type.Integer(), Type.Null()]),
  error: Type.Union([Type.String(), Type.Null()], {
    description: 'Why no response arrived (refused, timed out, ...); null when the target answered',
  }),
  response_excerpt: Type.String({ description: 'The start of the response body' }),
});

/** The delivery log of one hook event: every attempt, oldest first. */
export async function attemptRoutes(app: FastifyInstance, deps: AppDeps): Promise<void> {
  const { db, config } = deps;
  const r = app.withTypeProvider<TypeBoxTypeProvider>();

  r.get('/api/v1/oms/oms_hook_events/:id/attempts/', {
    schema: {
      tags: ['hook events'],
      summary: "List a hook event's delivery attempts",
      params: EventIdParams,
      querystring: Type.Object(PageQuery),
      response: { 200: pageOf(Attempt), ...errorResponses },
    },
    handler: async (request) => {
      const page = pageRequest(request.query, config.maxPageSize);
      const found = await listAttempts(
        db,
        scopeOf(request),
        request.params.id,
        page.limit,
        page.offset,
      );
      if (!found) throw AppError.notFound();
      return pageBody(request, page, found.count, found.results, config.publicUrl);
    },
  });
}
