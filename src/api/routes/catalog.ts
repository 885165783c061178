import { Type } from 'typebox';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { AppError } from '../../core/errors.js';
import { isValidEventTypeName } from '../../core/event-type.js';
import {
  deleteContentType,
  deleteEventType,
  getContentType,
  getEventType,
  insertContentType,
  insertEventType,
  listContentTypes,
  listEventTypes,
  updateContentType,
  updateEventType,
  type ContentTypeInput,
} from '../../store/catalog.js';
import type { ApiDeps } from '../app.js';
import { adminOnly } from '../auth.js';
import { Empty, ContentType, errorResponses, EventType, IdParams } from '../schemas.js';

const EVENT_TYPES = '/api/v1/oms/event_types';
const CONTENT_TYPES = '/api/v1/oms/content_types';

const EventTypeBody = Type.Object({
  name: Type.String({ minLength: 1, maxLength: 200 }),
  description: Type.Optional(Type.String({ maxLength: 2000 })),
});
const EventTypePatch = Type.Object({ description: Type.String({ maxLength: 2000 }) });
const ContentTypeBody = Type.Object({
  model: Type.String({ minLength: 1, maxLength: 100, pattern: '^[A-Za-z0-9_.-]+$' }),
  source_url: Type.Optional(Type.Union([Type.String({ maxLength: 2048 }), Type.Null()])),
  source_headers: Type.Optional(Type.Record(Type.String(), Type.String())),
});

function checkSource(input: ContentTypeInput): void {
  if (!input.source_url) return;
  let url: URL | undefined;
  try {
    url = new URL(input.source_url.replaceAll('{pk}', '1'));
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
    throw AppError.validation({
      source_url: ['Enter a valid http(s) URL; {pk} stands for the object id.'],
    });
  }
}

/** The catalogs: anyone may read them; only admins change them. */
export async function catalogRoutes(app: FastifyInstance, deps: ApiDeps): Promise<void> {
  const { db, lookups } = deps;
  const r = app.withTypeProvider<TypeBoxTypeProvider>();

  r.get(`${EVENT_TYPES}/`, {
    schema: {
      tags: ['catalog'],
      summary: 'List event types',
      response: { 200: Type.Array(EventType), ...errorResponses },
    },
    handler: () => listEventTypes(db),
  });
  r.post(`${EVENT_TYPES}/`, {
    preValidation: adminOnly,
    schema: {
      tags: ['catalog'],
      summary: 'Register an event type (admin)',
      body: EventTypeBody,
      response: { 201: EventType, ...errorResponses },
    },
    handler: async (request, reply) => {
      if (!isValidEventTypeName(request.body.name)) {
        throw AppError.validation({
          name: ['Use dot-separated words of letters, digits, _ and -, e.g. package.created.'],
        });
      }
      const created = await insertEventType(db, request.body.name, request.body.description ?? '');
      if (!created)
        throw AppError.validation({ name: ['An event type with this name already exists.'] });
      return reply.code(201).send(created);
    },
  });
  r.get(`${EVENT_TYPES}/:id/`, {
    schema: {
      tags: ['catalog'],
      params: IdParams,
      response: { 200: EventType, ...errorResponses },
    },
    handler: async (request) => {
      const found = await getEventType(db, request.params.id);
      if (!found) throw AppError.notFound();
      return found;
    },
  });
  r.patch(`${EVENT_TYPES}/:id/`, {
    preValidation: adminOnly,
    schema: {
      tags: ['catalog'],
      params: IdParams,
      body: EventTypePatch,
      response: { 200: EventType, ...errorResponses },
    },
    handler: async (request) => {
      const found = await updateEventType(db, request.params.id, request.body.description);
      if (!found) throw AppError.notFound();
      return found;
    },
  });
  r.delete(`${EVENT_TYPES}/:id/`, {
    preValidation: adminOnly,
    schema: { tags: ['catalog'], params: IdParams, response: { 204: Empty, ...errorResponses } },
    handler: async (request, reply) => {
      if (!(await deleteEventType(db, request.params.id))) throw AppError.notFound();
      return reply.code(204).send();
    },
  });

  r.get(`${CONTENT_TYPES}/`, {
    schema: {
      tags: ['catalog'],
      summary: 'List content types (model -> id)',
      response: { 200: Type.Array(ContentType), ...errorResponses },
    },
    handler: () => listContentTypes(db),
  });
  r.post(`${CONTENT_TYPES}/`, {
    preValidation: adminOnly,
    schema: {
      tags: ['catalog'],
      summary: 'Register a model (admin)',
      body: ContentTypeBody,
      response: { 201: ContentType, ...errorResponses },
    },
    handler: async (request, reply) => {
      const input = {
        model: request.body.model,
        source_url: request.body.source_url || null,
        source_headers: request.body.source_headers ?? {},
      };
      checkSource(input);
      const created = await insertContentType(db, input).finally(() =>
        lookups.contentTypesChanged(),
      );
      if (!created)
        throw AppError.validation({ model: ['A content type with this model already exists.'] });
      return reply.code(201).send(created);
    },
  });
  r.get(`${CONTENT_TYPES}/:id/`, {
    schema: {
      tags: ['catalog'],
      params: IdParams,
      response: { 200: ContentType, ...errorResponses },
    },
    handler: async (request) => {
      const found = await getContentType(db, request.params.id);
      if (!found) throw AppError.notFound();
      return found;
    },
  });
  r.put(`${CONTENT_TYPES}/:id/`, {
    preValidation: adminOnly,
    schema: {
      tags: ['catalog'],
      params: IdParams,
      body: ContentTypeBody,
      response: { 200: ContentType, ...errorResponses },
    },
    handler: async (request) => {
      const input = {
        model: request.body.model,
        source_url: request.body.source_url || null,
        source_headers: request.body.source_headers ?? {},
      };
      checkSource(input);
      const found = await updateContentType(db, request.params.id, input).finally(() =>
        lookups.contentTypesChanged(),
      );
      if (!found) throw AppError.notFound();
      if (found === 'duplicate')
        throw AppError.validation({ model: ['A content type with this model already exists.'] });
      return found;
    },
  });
  r.delete(`${CONTENT_TYPES}/:id/`, {
    preValidation: adminOnly,
    schema: { tags: ['catalog'], params: IdParams, response: { 204: Empty, ...errorResponses } },
    handler: async (request, reply) => {
      const exists = await getContentType(db, request.params.id);
      if (!exists) throw AppError.notFound();
      const deleted = await deleteContentType(db, request.params.id).finally(() =>
        lookups.contentTypesChanged(),
      );
      if (!deleted) {
        throw AppError.validation({
          non_field_errors: ['Hook events refer to this content type; it cannot be deleted.'],
        });
      }
      return reply.code(204).send();
    },
  });
}
