import { Type, type Static } from 'typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { AppError } from '../../core/errors.js';
import { parseExact, stringifyExact } from '../../core/exact-json.js';
import { isPattern, matchesEventType } from '../../core/event-type.js';
import { newEventUuid, normaliseUuid, uuidHex } from '../../core/ids.js';
import { resendOnce } from '../../delivery/resend.js';
import { fetchSourcePayload } from '../../delivery/source.js';
import type { NewHookEvent } from '../../queue/enqueue.js';
import {
  GROUP_COMMIT_DEFAULTS,
  GroupCommit,
  PGLITE_GROUP_COMMIT,
  PublishBufferFull,
} from '../../queue/group-commit.js';
import {
  countHookEvents,
  findHookEvent,
  getHookEvent,
  listHookEvents,
  ORDERING_FIELDS,
  type HookEventFilters,
  type Ordering,
} from '../../store/hook-events.js';
import { listSubscribers, type WebhookJson } from '../../store/webhooks.js';
import type { ApiDeps } from '../app.js';
import { adminOnly, scopeOf } from '../auth.js';
import { publishBufferFull } from '../errors.js';
import { pageBody, pageOf, PageQuery, pageRequest } from '../pagination.js';
import { Detail, Empty, errorResponses, EventIdParams, HookEvent } from '../schemas.js';

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
  // One schema with a type list, not a union: with coerceTypes Ajv would turn a string
  // pk "42" into the integer 42 (the first union member); a type list is coerced only
  // when the value is neither type, so object_id keeps the pk's JSON type.
  pk: Type.Unsafe<number | string>({
    type: ['integer', 'string'],
    minLength: 1,
    maxLength: 200,
  }),
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

const DATE =
  /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?(Z|[+-]\d{2}(?::?\d{2})?)?)?$/;

/**
 * A date filter as an exact UTC literal (`2024-02-19T08:12:18.591206Z`), or null when it
 * names no real instant. No offset means UTC, whatever the database's time zone; any
 * offset under 24 h is applied here, so PostgreSQL never sees one it would reject.
 */
function parseDateFilter(value: string): string | null {
  const m = DATE.exec(value);
  if (!m) return null;
  const [y, mo, d, h, mi, s] = m.slice(1, 7).map((part) => Number(part ?? 0)) as number[];
  const frac = m[7] ?? '';
  const zone = m[8] ?? 'Z';
  if (h! > 23 || mi! > 59 || s! > 59) return null;
  const at = new Date(0);
  at.setUTCFullYear(y!, mo! - 1, d!);
  if (y! < 1 || at.getUTCMonth() !== mo! - 1 || at.getUTCDate() !== d!) return null;
  let offset = 0;
  if (zone !== 'Z') {
    const oh = Number(zone.slice(1, 3));
    const om = Number(zone.slice(3).replace(':', '') || 0);
    if (oh > 23 || om > 59) return null;
    offset = (zone.startsWith('-') ? -1 : 1) * (oh * 60 + om);
  }
  at.setUTCHours(h!, mi! - offset, s!, 0);
  if (at.getUTCFullYear() < 1 || at.getUTCFullYear() > 9999) return null;
  return `${at.toISOString().slice(0, 19)}.${frac.padEnd(6, '0')}Z`;
}

/**
 * Query values as Django reads them: a repeated parameter counts by its last value and
 * an empty one is no filter at all (django-filter; DRF's `page=` is the first page).
 */
async function djangoQueryValues(request: FastifyRequest): Promise<void> {
  const query = request.query as Record<string, unknown>;
  for (const [key, value] of Object.entries(query)) {
    const last: unknown = Array.isArray(value) ? value[value.length - 1] : value;
    if (last === '' || last === undefined) delete query[key];
    else query[key] = last;
  }
}

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
    const at = parseDateFilter(v);
    if (at) f[key] = at;
    else errors[key] = ['Enter a valid date/time.'];
  }
  for (const key of ['event_type', 'object_id'] as const) {
    if (q[key]?.includes('\0')) errors[key] = ['Null characters are not allowed.'];
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
      body.instance = parseExact(body.instance);
    } catch {
      /* left for validation to report */
    }
  }
  const instance = body.instance as Record<string, unknown> | undefined;
  // A form carries every value as text; there an all-digit pk means the integer, kept
  // exact past 15 digits as JSON's is (src/core/exact-json.ts).
  const form = String(request.headers['content-type'] ?? '').startsWith(
    'application/x-www-form-urlencoded',
  );
  if (form && instance && typeof instance.pk === 'string') {
    if (/^\d{1,15}$/.test(instance.pk)) instance.pk = Number(instance.pk);
    else if (/^[1-9]\d{15,199}$/.test(instance.pk)) instance.pk = parseExact(instance.pk);
  }
  if (instance && typeof instance.data === 'string') {
    try {
      instance.data = parseExact(instance.data);
    } catch {
      /* left for validation to report */
    }
  }
}

/**
 * PostgreSQL's foreign_key_violation on `constraint`, as both adapters report it. The
 * checks of migration 012 raise it under the names of the keys they replaced.
 */
const violates = (error: unknown, constraint: string): boolean => {
  const { code, constraint: name } = (error ?? {}) as { code?: unknown; constraint?: unknown };
  return code === '23503' && name === constraint;
};

/** Writes an emit tries, each after re-reading its subscribers when one was deleted. */
const EMIT_ATTEMPTS = 3;

const noSuchHook = (hook: number) =>
  AppError.validation({ hook: [`Invalid pk "${hook}" - object does not exist.`] });

const unknownModel = (model: string) =>
  AppError.validation({
    instance: {
      model: [`Unknown model "${model}". Register it at /api/v1/oms/content_types/ first.`],
    },
  });

export async function hookEventRoutes(app: FastifyInstance, deps: ApiDeps): Promise<void> {
  const { db, config, clock, lookups } = deps;
  // Concurrent publishes share one statement; each is answered after its commit.
  const commits = new GroupCommit(
    db,
    clock,
    {
      ...(db.kind === 'pglite' ? PGLITE_GROUP_COMMIT : GROUP_COMMIT_DEFAULTS),
      heldBytesLimit: config.publishBufferBytes,
    },
    deps.handoff && { to: deps.handoff, leaseMs: config.leaseMs },
  );
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
    preValidation: djangoQueryValues,
    schema: {
      tags: ['hook events'],
      summary: 'List hook events',
      querystring: ListQuery,
      response: { 200: Page, ...errorResponses },
    },
    handler: (request) => list(request, request.query, false),
  });

  r.get(UNDELIVERED, {
    preValidation: djangoQueryValues,
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
      params: EventIdParams,
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
    const contentType = await lookups.contentType(instance.model);
    if (!contentType) throw unknownModel(instance.model);
    let payload: Record<string, unknown>;
    if (instance.data !== undefined) payload = instance.data;
    else if (contentType.source_url) {
      payload = await fetchSourcePayload(
        contentType.source_url,
        instance.pk,
        contentType.source_headers,
        config.requestTimeoutMs,
        deps.sender,
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
    // security (issue 5): outbound payloads are capped, inline or fetched alike
    const payloadJson = stringifyExact(payload);
    if (Buffer.byteLength(payloadJson) > config.maxPayloadBytes) {
      throw new AppError(
        413,
        'payload_too_large',
        `The event payload is larger than ${config.maxPayloadBytes} bytes.`,
      );
    }
    return { contentTypeId: contentType.id, payloadJson };
  }

  const newEvent = (
    webhook: WebhookJson,
    eventType: string,
    instance: InstanceInput,
    resolved: { contentTypeId: number; payloadJson: string },
  ): NewHookEvent => {
    const uuid = newEventUuid(clock.now());
    return {
      webhookId: webhook.id,
      uuid,
      eventType,
      // {"event": {"type", "uuid"}, "payload"}, as JSON.stringify would write it
      requestPayload: `{"event":{"type":${JSON.stringify(eventType)},"uuid":"${uuidHex(uuid)}"},"payload":${resolved.payloadJson}}`,
      objectId: instance.pk,
      contentTypeId: resolved.contentTypeId,
      maxAttempts:
        typeof webhook.config.max_retries === 'number'
          ? webhook.config.max_retries
          : config.defaultMaxRetries,
    };
  };

  /**
   * Writes the events; answers once they are committed. A webhook or content type read
   * from the lookups may have been deleted since (here or in another process): the
   * insert's reference check (migration 012) then fails it, answered as the 400 a
   * missed lookup gives, and the stale copy is forgotten. Other requests gathered in the
   * same group commit are written without this one.
   */
  async function enqueue(events: NewHookEvent[], instance: InstanceInput, hook?: number) {
    try {
      await commits.enqueue(events);
    } catch (error) {
      if (error instanceof PublishBufferFull) throw publishBufferFull(error);
      if (hook !== undefined && violates(error, 'hook_events_webhook_id_fkey')) {
        lookups.webhookChanged(hook);
        throw noSuchHook(hook);
      }
      if (violates(error, 'hook_events_content_type_id_fkey')) {
        lookups.contentTypesChanged();
        throw unknownModel(instance.model);
      }
      throw error;
    }
  }

  r.post(`${BASE}/publish-event/`, {
    config: { exactInstance: true },
    preValidation: [adminOnly, async (request) => formInstance(request)],
    schema: {
      tags: ['hook events'],
      summary: 'Publish an event to one webhook (admin)',
      body: PublishBody,
      response: {
        202: Empty,
        ...errorResponses,
        413: Detail,
        415: Detail,
        502: Detail,
        503: Detail,
      },
    },
    handler: async (request, reply) => {
      const { hook, instance, event_type: requested } = request.body;
      const webhook = await lookups.webhook(scopeOf(request), hook);
      if (!webhook) throw noSuchHook(hook);
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
      await enqueue([event], instance, hook);
      return reply.code(202).send();
    },
  });

  r.post(`${BASE}/emit/`, {
    config: { exactInstance: true },
    preValidation: [adminOnly, async (request) => formInstance(request)],
    schema: {
      tags: ['hook events'],
      summary: 'Publish an event to every active webhook whose event type matches (admin)',
      body: EmitBody,
      response: {
        202: Type.Object({ events: Type.Array(Type.String()) }),
        ...errorResponses,
        413: Detail,
        502: Detail,
        503: Detail,
      },
    },
    handler: async (request, reply) => {
      const { event_type: eventType, instance } = request.body;
      const resolved = await resolveInstance(instance);
      let events = (await listSubscribers(db, eventType)).map((w) =>
        newEvent(w, eventType, instance, resolved),
      );
      // A subscriber deleted between the read and the insert fails the insert on its
      // reference check: the emit goes to the subscribers that remain, read again.
      for (let attempt = 1; ; attempt++) {
        try {
          await enqueue(events, instance);
          break;
        } catch (error) {
          if (attempt === EMIT_ATTEMPTS || !violates(error, 'hook_events_webhook_id_fkey')) {
            throw error;
          }
          const remaining = new Set((await listSubscribers(db, eventType)).map((w) => w.id));
          events = events.filter((e) => remaining.has(e.webhookId));
        }
      }
      return reply.code(202).send({ events: events.map((e) => e.uuid) });
    },
  });

  r.post(`${BASE}/resend-event/`, {
    schema: {
      tags: ['hook events'],
      summary: 'Make one delivery attempt now and record it',
      body: ResendBody,
      response: { 200: Empty, ...errorResponses, 409: Detail },
    },
    handler: async (request, reply) => {
      const uuid = normaliseUuid(request.body.event);
      if (!uuid) throw AppError.validation({ event: ['Must be a valid UUID.'] });
      const scope = scopeOf(request);
      const event = await findHookEvent(db, scope, uuid);
      if (!event) throw AppError.notFound();
      if (event.delivered && request.body.force !== true) {
        throw AppError.validation({
          event: ['This event was already delivered. Send "force": true to deliver it again.'],
        });
      }
      const outcome = await resendOnce(
        {
          db,
          clock,
          sender: deps.sender,
          leaseMs: config.leaseMs,
          requestTimeoutMs: config.requestTimeoutMs,
          defaultMaxRetries: config.defaultMaxRetries,
        },
        event.id,
      );
      if (outcome === 'busy') {
        throw new AppError(
          409,
          'busy',
          'A delivery of this event is in progress; try again in a moment.',
        );
      }
      if (outcome === undefined) throw AppError.notFound();
      return reply.code(200).send();
    },
  });
}
