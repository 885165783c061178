import { Type, type Static } from '@fastify/type-provider-typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { isoMicro } from '../../core/clock.js';
import { AppError } from '../../core/errors.js';
import { isPattern, matchesEventType } from '../../core/event-type.js';
import { newEventUuid, normaliseUuid, uuidHex } from '../../core/ids.js';
import { resendOnce } from '../../delivery/resend.js';
import { fetchSourcePayload } from '../../delivery/source.js';
import { enqueueHookEvents, type NewHookEvent } from '../../queue/enqueue.js';
import { findContentType } from '../../store/catalog.js';
import {
  countHookEvents,
  findHookEventId,
  getHookEvent,
  listHookEvents,
  ORDERING_FIELDS,
  type HookEventFilters,
  type Ordering,
} from '../../store/hook-events.js';
import { getWebhook, listActiveWebhooks, type WebhookJson } from '../../store/webhooks.js';
import type { AppDeps } from '../app.js';
import { requireAdmin, scopeOf } from '../auth.js';
import { pageBody, pageOf, PageQuery, pageRequest } from '../pagination.js';
import { Detail, Empty, errorResponses, HookEvent, IdParams } from '../schemas.js';

const BASE = '/api/v1/oms/oms_hook_events';
const UNDELIVERED = '/api/v1/oms/settings/undelivered_webhooks/';

const DateFilter = Type.String({ description: 'ISO-8601 date or date-time' });
const ListQuery = Type.Object({
  ...PageQuery,
  delivered: Type.Optional(Type.String({ description: 'true or false' })),
  webhook: Type.Optional(Type.Integer()),
  event_type: Type.Optional(Type.String()),
  object_id: Type.Optional(Type.String()),
  content_type: Type.Optional(Type.Integer()),
  uuid: Type.Optional(Type.String()),
  response_http_status: Type.Optional(Type.Integer()),
  created_date__gte: Type.Optional(DateFilter),
  created_date__lte: Type.Optional(DateFilter),
  modified_date__gte: Type.Optional(DateFilter),
  modified_date__lte: Type.Optional(DateFilter),
  ordering: Type.Optional(
    Type.String({
      description: `Comma-separated; prefix - for descending: ${Object.keys(ORDERING_FIELDS).join(', ')}`,
    }),
  ),
});
type ListQuery = Static<typeof ListQuery>;

const Instance = Type.Object({
  pk: Type.Union([Type.Integer(), Type.String({ minLength: 1, maxLength: 200 })]),
  model: Type.String({ minLength: 1, maxLength: 100 }),
  data: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
});
const PublishBody = Type.Object({
  hook: Type.Integer({ minimum: 1 }),
  instance: Instance,
  event_type: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
});
const EmitBody = Type.Object({
  event_type: Type.String({ minLength: 1, maxLength: 200 }),
  instance: Instance,
});
const ResendBody = Type.Object({
  event: Type.String({ minLength: 1, maxLength: 64 }),
  force: Type.Optional(Type.Boolean()),
});
type InstanceInput = Static<typeof Instance>;

const DATE = /^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}(:?\d{2})?)?)?$/;

/** Reads the filters as django-filter would, with its messages for bad values. */
function parseFilters(q: ListQuery): HookEventFilters {
  const errors: Record<string, string[]> = {};
  const f: HookEventFilters = {};
  if (q.delivered !== undefined) {
    const v = q.delivered.toLowerCase();
    if (['true', '1', 'yes'].includes(v)) f.delivered = true;
    else if (['false', '0', 'no'].includes(v)) f.delivered = false;
    else
      errors.delivered = [
        'Select a valid choice. That choice is not one of the available choices.',
      ];
  }
  if (q.uuid !== undefined) {
    const u = normaliseUuid(q.uuid);
    if (u) f.uuid = u;
    else errors.uuid = ['Enter a valid UUID.'];
  }
  for (const key of [
    'created_date__gte',
    'created_date__lte',
    'modified_date__gte',
    'modified_date__lte',
  ] as const) {
    const v = q[key];
    if (v === undefined) continue;
    if (DATE.test(v) && !Number.isNaN(Date.parse(v.replace(' ', 'T')))) f[key] = v;
    else errors[key] = ['Enter a valid date/time.'];
  }
  if (q.webhook !== undefined) f.webhook = q.webhook;
  if (q.event_type !== undefined) f.event_type = q.event_type;
  if (q.object_id !== undefined) f.object_id = q.object_id;
  if (q.content_type !== undefined) f.content_type = q.content_type;
  if (q.response_http_status !== undefined) f.response_http_status = q.response_http_status;
  if (Object.keys(errors).length > 0) throw AppError.validation(errors);
  return f;
}

function parseOrdering(value: string | undefined): Ordering {
  if (!value) return [{ field: 'id', desc: true }];
  const out: Ordering = [];
  for (const raw of value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const desc = raw.startsWith('-');
    const field = desc ? raw.slice(1) : raw;
    // DRF ignores unknown ordering fields; so do we.
    if (field in ORDERING_FIELDS) out.push({ field: field as keyof typeof ORDERING_FIELDS, desc });
  }
  return out.length > 0 ? out : [{ field: 'id', desc: true }];
}

/** `instance[data]` from a form arrives as a string; a JSON object inside is accepted. */
function formInstance(request: FastifyRequest): void {
  const body = request.body as Record<string, unknown> | undefined;
  if (!body || typeof body !== 'object') return;
  if (typeof body.instance === 'string') {
    try {
      body.instance = JSON.parse(body.instance);
    } catch {
      /* left for validation to report */
    }
  }
  const instance = body.instance as Record<string, unknown> | undefined;
  if (instance && typeof instance.data === 'string') {
    try {
      instance.data = JSON.parse(instance.data);
    } catch {
      /* left for validation to report */
    }
  }
}

export async function hookEventRoutes(app: FastifyInstance, deps: AppDeps): Promise<void> {
  const { db, config, clock } = deps;
  const r = app.withTypeProvider<import('@fastify/type-provider-typebox').TypeBoxTypeProvider>();
  const Page = pageOf(HookEvent);

  async function list(request: FastifyRequest, q: ListQuery, undelivered: boolean) {
    const filters = { ...parseFilters(q), ...(undelivered ? { undelivered: true } : {}) };
    const scope = scopeOf(request);
    const page = pageRequest(q, config.maxPageSize);
    const [count, results] = await Promise.all([
      countHookEvents(db, scope, filters),
      listHookEvents(db, scope, filters, parseOrdering(q.ordering), page.limit, page.offset),
    ]);
    return pageBody(request, page, count, results, config.publicUrl);
  }

  r.get(`${BASE}/`, {
    schema: {
      tags: ['hook events'],
      summary: 'List hook events',
      querystring: ListQuery,
      response: { 200: Page, ...errorResponses },
    },
    handler: (request) => list(request, request.query, false),
  });

  r.get(UNDELIVERED, {
    schema: {
      tags: ['hook events'],
      summary: 'List hook events that were attempted and not delivered',
      querystring: ListQuery,
      response: { 200: Page, ...errorResponses },
    },
    handler: (request) => list(request, request.query, true),
  });

  r.get(`${BASE}/:id/`, {
    schema: {
      tags: ['hook events'],
      summary: 'Show a hook event',
      params: IdParams,
      response: { 200: HookEvent, ...errorResponses },
    },
    handler: async (request) => {
      const event = await getHookEvent(db, scopeOf(request), request.params.id);
      if (!event) throw AppError.notFound();
      return event;
    },
  });

  /** The payload: inline data, else fetched from the model's source URL. */
  async function resolveInstance(instance: InstanceInput) {
    const contentType = await findContentType(db, instance.model);
    if (!contentType) {
      throw AppError.validation({
        instance: {
          model: [
            `Unknown model "${instance.model}". Register it at /api/v1/oms/content_types/ first.`,
          ],
        },
      });
    }
    let payload: Record<string, unknown>;
    if (instance.data !== undefined) payload = instance.data;
    else if (contentType.source_url) {
      payload = await fetchSourcePayload(
        contentType.source_url,
        instance.pk,
        contentType.source_headers,
        config.requestTimeoutMs,
      );
    } else {
      throw AppError.validation({
        instance: {
          data: [
            `Send the object in instance.data, or set a source_url on the "${instance.model}" content type.`,
          ],
        },
      });
    }
    return { contentTypeId: contentType.id, payload };
  }

  const newEvent = (
    webhook: WebhookJson,
    eventType: string,
    instance: InstanceInput,
    resolved: { contentTypeId: number; payload: unknown },
  ): NewHookEvent => {
    const uuid = newEventUuid();
    return {
      webhookId: webhook.id,
      uuid,
      eventType,
      requestPayload: {
        event: { type: eventType, uuid: uuidHex(uuid) },
        payload: resolved.payload,
      },
      objectId: instance.pk,
      contentTypeId: resolved.contentTypeId,
      maxAttempts:
        typeof webhook.config.max_retries === 'number'
          ? webhook.config.max_retries
          : config.defaultMaxRetries,
    };
  };

  r.post(`${BASE}/publish-event/`, {
    preValidation: async (request) => formInstance(request),
    schema: {
      tags: ['hook events'],
      summary: 'Publish an event to one webhook (admin)',
      body: PublishBody,
      response: { 202: Empty, ...errorResponses, 413: Detail, 415: Detail, 502: Detail },
    },
    handler: async (request, reply) => {
      requireAdmin(request);
      const { hook, instance, event_type: requested } = request.body;
      const webhook = await getWebhook(db, scopeOf(request), hook);
      if (!webhook)
        throw AppError.validation({ hook: [`Invalid pk "${hook}" - object does not exist.`] });
      if (!webhook.is_active)
        throw AppError.validation({ hook: [`Webhook ${hook} is not active.`] });
      let eventType = webhook.event_type;
      if (isPattern(webhook.event_type)) {
        if (!requested) {
          throw AppError.validation({
            event_type: [
              `Webhook ${hook} subscribes to "${webhook.event_type}"; name the event type to publish.`,
            ],
          });
        }
        if (!matchesEventType(webhook.event_type, requested)) {
          throw AppError.validation({
            event_type: [`"${requested}" does not match the webhook's "${webhook.event_type}".`],
          });
        }
        eventType = requested;
      } else if (requested !== undefined && requested !== webhook.event_type) {
        throw AppError.validation({
          event_type: [
            `Webhook ${hook} subscribes to "${webhook.event_type}", not "${requested}".`,
          ],
        });
      }
      const resolved = await resolveInstance(instance);
      const event = newEvent(webhook, eventType, instance, resolved);
      await db.transaction((tx) => enqueueHookEvents(tx, [event], isoMicro(clock.now())));
      return reply.code(202).send();
    },
  });

  r.post(`${BASE}/emit/`, {
    preValidation: async (request) => formInstance(request),
    schema: {
      tags: ['hook events'],
      summary: 'Publish an event to every active webhook whose event type matches (admin)',
      body: EmitBody,
      response: {
        202: Type.Object({ events: Type.Array(Type.String()) }),
        ...errorResponses,
        413: Detail,
        502: Detail,
      },
    },
    handler: async (request, reply) => {
      requireAdmin(request);
      const { event_type: eventType, instance } = request.body;
      const resolved = await resolveInstance(instance);
      const targets = (await listActiveWebhooks(db)).filter((w) =>
        matchesEventType(w.event_type, eventType),
      );
      const events = targets.map((w) => newEvent(w, eventType, instance, resolved));
      await db.transaction((tx) => enqueueHookEvents(tx, events, isoMicro(clock.now())));
      return reply.code(202).send({ events: events.map((e) => e.uuid) });
    },
  });

  r.post(`${BASE}/resend-event/`, {
    schema: {
      tags: ['hook events'],
      summary: 'Make one delivery attempt now and record it',
      body: ResendBody,
      response: { 200: Empty, ...errorResponses },
    },
    handler: async (request, reply) => {
      const uuid = normaliseUuid(request.body.event);
      if (!uuid) throw AppError.validation({ event: ['Must be a valid UUID.'] });
      const scope = scopeOf(request);
      const id = await findHookEventId(db, scope, uuid);
      if (id === undefined) throw AppError.notFound();
      const event = await getHookEvent(db, scope, id);
      if (event?.delivered && request.body.force !== true) {
        throw AppError.validation({
          event: ['This event was already delivered. Send "force": true to deliver it again.'],
        });
      }
      await resendOnce(
        {
          db,
          clock,
          sender: deps.sender,
          leaseMs: config.leaseMs,
          requestTimeoutMs: config.requestTimeoutMs,
          defaultMaxRetries: config.defaultMaxRetries,
        },
        id,
      );
      return reply.code(200).send();
    },
  });
}
