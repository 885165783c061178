import { isIP } from 'node:net';
import { Type, type Static } from 'typebox';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { AppError } from '../../core/errors.js';
import { isPattern, isValidSubscription, matchesEventType } from '../../core/event-type.js';
import { DEFAULT_RETRY_COUNTDOWN, parseRetryCountdownConfig } from '../../core/retry.js';
import { generateSecret } from '../../core/signature.js';
import { isPrivateHost } from '../../delivery/ssrf.js';
import { tokenAuthErrors } from '../../delivery/target-auth.js';
import { SIGNATURE_MODES } from '../../core/signature.js';
import { eventTypeNames } from '../../store/catalog.js';
import { isInt4, type Db } from '../../store/db.js';
import {
  countWebhooks,
  deleteWebhook,
  getWebhook,
  insertWebhook,
  listWebhooks,
  updateWebhook,
  type WebhookInput,
  type WebhookJson,
} from '../../store/webhooks.js';
import type { ApiDeps } from '../app.js';
import { scopeOf, userOf } from '../auth.js';
import { pageBody, pageOf, PageQuery, pageRequest } from '../pagination.js';
import { Empty, errorResponses, IdParams, Webhook } from '../schemas.js';

const BASE = '/api/v1/oms/webhooks';

const Fields = {
  target_url: Type.String({ minLength: 1, maxLength: 2048 }),
  event_type: Type.String({ minLength: 1, maxLength: 200 }),
  retry_countdown_config: Type.Unknown({
    description: '{"choice": fixed|linear|exponential|random, "kwargs": {...}}',
  }),
  is_active: Type.Boolean(),
  secret_key: Type.String({ minLength: 1, maxLength: 512 }),
  callback: Type.Union([Type.String({ maxLength: 2048 }), Type.Null()]),
  additional_headers: Type.Record(Type.String(), Type.String()),
  config: Type.Record(Type.String(), Type.Unknown()),
};
const CreateBody = Type.Object({
  target_url: Fields.target_url,
  event_type: Fields.event_type,
  retry_countdown_config: Type.Optional(Fields.retry_countdown_config),
  is_active: Type.Optional(Fields.is_active),
  secret_key: Type.Optional(Fields.secret_key),
  callback: Type.Optional(Fields.callback),
  additional_headers: Type.Optional(Fields.additional_headers),
  config: Type.Optional(Fields.config),
});
const PatchBody = Type.Partial(CreateBody);
type PatchBody = Static<typeof PatchBody>;

/** Headers a webhook may not set: hop-by-hop, framing, and the ones we sign with. */
const RESERVED_HEADERS = new Set([
  'host',
  'content-length',
  'content-type',
  'transfer-encoding',
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'upgrade',
  'expect',
  'webhook-id',
  'webhook-timestamp',
  'webhook-signature',
  'x-whisperer-event',
  'x-whisperer-signature',
]);
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** Decides whether a URL's host may be a target: the sender's guard judges literal addresses. */
type HostPolicy = (hostname: string) => boolean;

function checkUrl(value: string, refused: HostPolicy): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return 'Enter a valid URL.';
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    return 'Only http and https URLs are allowed.';
  if (refused(url.hostname)) {
    return 'This address is on a private or local network; such targets are refused unless the server runs with --allow-private-targets.';
  }
  return undefined;
}

/** Merges a request over the current webhook (if any) and validates the result. */
async function validate(
  db: Db,
  body: PatchBody,
  current: WebhookJson | undefined,
  refused: HostPolicy,
): Promise<WebhookInput> {
  const errors: Record<string, unknown> = {};
  const merged = {
    target_url: body.target_url ?? current?.target_url ?? '',
    event_type: body.event_type ?? current?.event_type ?? '',
    retry_countdown_config:
      body.retry_countdown_config ?? current?.retry_countdown_config ?? DEFAULT_RETRY_COUNTDOWN,
    is_active: body.is_active ?? current?.is_active ?? true,
    secret_key: body.secret_key ?? current?.secret_key ?? generateSecret(),
    callback: body.callback !== undefined ? body.callback || null : (current?.callback ?? null),
    additional_headers: body.additional_headers ?? current?.additional_headers ?? {},
    config: body.config ?? current?.config ?? {},
  };

  const urlError = checkUrl(merged.target_url, refused);
  if (urlError) errors.target_url = [urlError];
  if (merged.callback) {
    const callbackError = checkUrl(merged.callback, refused);
    if (callbackError) errors.callback = [callbackError];
  }

  if (!isValidSubscription(merged.event_type)) {
    errors.event_type = [`"${merged.event_type}" is not a valid event type or pattern.`];
  } else {
    const names = await eventTypeNames(db);
    const known = isPattern(merged.event_type)
      ? names.some((n) => matchesEventType(merged.event_type, n))
      : names.includes(merged.event_type);
    if (!known) {
      errors.event_type = [
        isPattern(merged.event_type)
          ? `"${merged.event_type}" matches no registered event type.`
          : `"${merged.event_type}" is not a valid choice. See /api/v1/oms/event_types/.`,
      ];
    }
  }

  const retry = parseRetryCountdownConfig(merged.retry_countdown_config);
  if (!retry.ok) errors.retry_countdown_config = retry.errors;

  const headerErrors: string[] = [];
  for (const [name, value] of Object.entries(merged.additional_headers)) {
    if (!TOKEN.test(name)) headerErrors.push(`"${name}" is not a valid header name.`);
    else if (RESERVED_HEADERS.has(name.toLowerCase()) || name.toLowerCase().startsWith('proxy-')) {
      headerErrors.push(`"${name}" is set by the service and cannot be overridden.`);
    } else if (/[\r\n\0]/.test(value))
      headerErrors.push(`The value of "${name}" contains a line break.`);
  }
  if (headerErrors.length > 0) errors.additional_headers = headerErrors;

  const configErrors = validateConfig(merged.config);
  if (configErrors) errors.config = configErrors;

  if (Object.keys(errors).length > 0) throw AppError.validation(errors);
  return { ...merged, retry_countdown_config: retry.ok ? retry.value : DEFAULT_RETRY_COUNTDOWN };
}

function validateConfig(config: Record<string, unknown>): Record<string, string[]> | undefined {
  const errors: Record<string, string[]> = {};
  const { max_retries: maxRetries, timeout, auth } = config;
  if (
    maxRetries !== undefined &&
    !(Number.isInteger(maxRetries) && (maxRetries as number) >= 1 && (maxRetries as number) <= 100)
  ) {
    errors.max_retries = ['Ensure this value is an integer from 1 to 100.'];
  }
  if (timeout !== undefined && !(typeof timeout === 'number' && timeout > 0 && timeout <= 60)) {
    errors.timeout = ['Ensure this value is a number of seconds above 0 and at most 60.'];
  }
  if (auth !== undefined && auth !== null) {
    const a = auth as Record<string, unknown>;
    if (typeof auth !== 'object' || Array.isArray(auth))
      errors.auth = ['Expected a dictionary of items.'];
    else if (a.type === 'token') {
      const tokenErrors = tokenAuthErrors(a);
      if (tokenErrors.length > 0) errors.auth = tokenErrors;
    } else if (a.type !== 'basic')
      errors.auth = ['"type" must be "basic" (username, password) or "token" (url, ...).'];
    else if (
      typeof a.username !== 'string' ||
      (a.password !== undefined && typeof a.password !== 'string')
    ) {
      errors.auth = ['Basic auth needs a string "username" and "password".'];
    }
  }
  // delivery engine limits, enforced across all workers by the claim
  const { max_concurrency: maxConcurrency, rate_limit: rateLimit, ordered } = config;
  if (
    maxConcurrency !== undefined &&
    !(
      Number.isInteger(maxConcurrency) &&
      (maxConcurrency as number) >= 1 &&
      (maxConcurrency as number) <= 1000
    )
  ) {
    errors.max_concurrency = ['Ensure this value is an integer from 1 to 1000.'];
  }
  if (
    rateLimit !== undefined &&
    !(typeof rateLimit === 'number' && rateLimit > 0 && rateLimit <= 10_000)
  ) {
    errors.rate_limit = [
      'Ensure this value is a number of requests per second above 0 and at most 10000.',
    ];
  }
  if (ordered !== undefined && typeof ordered !== 'boolean') {
    errors.ordered = ['Must be a valid boolean.'];
  }
  if (config.signature !== undefined && !SIGNATURE_MODES.includes(config.signature as never)) {
    errors.signature = ['Must be one of: standard, whisperer, both.'];
  }
  return Object.keys(errors).length > 0 ? errors : undefined;
}

/**
 * Runs before body validation on routes that change one webhook: as in DRF, someone
 * else's (or a missing) webhook is a 404 whatever the body, so a 400 listing field
 * errors never tells a stranger that the object exists.
 */
export function ownWebhookFirst(db: Db) {
  return async (request: FastifyRequest): Promise<void> => {
    const id = Number((request.params as { id?: string }).id);
    if (id < 1 || !isInt4(id)) throw AppError.notFound();
    if (!(await getWebhook(db, scopeOf(request), id))) {
      throw AppError.notFound();
    }
  };
}

export async function webhookRoutes(app: FastifyInstance, deps: ApiDeps): Promise<void> {
  const { db, config, lookups } = deps;
  const r = app.withTypeProvider<TypeBoxTypeProvider>();
  // Literal addresses are judged by the same guard that checks every connection (so
  // ALLOWED_TARGET_CIDRS applies here too); local names like `localhost` by name.
  const refused: HostPolicy = (hostname) => {
    const host = hostname.replace(/^\[|\]$/g, '');
    if (isIP(host)) return deps.sender.guard.refusal(host) !== undefined;
    return !config.allowPrivateTargets && isPrivateHost(host);
  };

  r.get(`${BASE}/`, {
    schema: {
      tags: ['webhooks'],
      summary: 'List webhooks',
      querystring: Type.Object(PageQuery),
      response: { 200: pageOf(Webhook), ...errorResponses },
    },
    handler: async (request) => {
      const scope = scopeOf(request);
      const page = pageRequest(request.query, config.maxPageSize);
      const [count, results] = await Promise.all([
        countWebhooks(db, scope),
        listWebhooks(db, scope, page.limit, page.offset),
      ]);
      return pageBody(request, page, count, results, config.publicUrl);
    },
  });

  r.post(`${BASE}/`, {
    schema: {
      tags: ['webhooks'],
      summary: 'Register a webhook',
      body: CreateBody,
      response: { 201: Webhook, ...errorResponses },
    },
    handler: async (request, reply) => {
      const input = await validate(db, request.body, undefined, refused);
      return reply.code(201).send(await insertWebhook(db, userOf(request).id, input));
    },
  });

  r.get(`${BASE}/:id/`, {
    schema: {
      tags: ['webhooks'],
      summary: 'Show a webhook',
      params: IdParams,
      response: { 200: Webhook, ...errorResponses },
    },
    handler: async (request) => {
      const webhook = await getWebhook(db, scopeOf(request), request.params.id);
      if (!webhook) throw AppError.notFound();
      return webhook;
    },
  });

  for (const method of ['PUT', 'PATCH'] as const) {
    r.route({
      method,
      url: `${BASE}/:id/`,
      preValidation: ownWebhookFirst(db),
      schema: {
        tags: ['webhooks'],
        summary: method === 'PUT' ? 'Replace a webhook' : 'Change some fields of a webhook',
        params: IdParams,
        body: method === 'PUT' ? CreateBody : PatchBody,
        response: { 200: Webhook, ...errorResponses },
      },
      handler: async (request) => {
        const scope = scopeOf(request);
        const current = await getWebhook(db, scope, request.params.id);
        if (!current) throw AppError.notFound();
        const input = await validate(db, request.body as PatchBody, current, refused);
        // Publish sees the change at once: its cached copy of the webhook goes.
        const updated = await updateWebhook(db, scope, request.params.id, input).finally(() =>
          lookups.webhookChanged(request.params.id),
        );
        if (!updated) throw AppError.notFound();
        return updated;
      },
    });
  }

  r.delete(`${BASE}/:id/`, {
    schema: {
      tags: ['webhooks'],
      summary: 'Delete a webhook and its events',
      params: IdParams,
      response: { 204: Empty, ...errorResponses },
    },
    handler: async (request, reply) => {
      const deleted = await deleteWebhook(db, scopeOf(request), request.params.id).finally(() =>
        lookups.webhookChanged(request.params.id),
      );
      if (!deleted) throw AppError.notFound();
      return reply.code(204).send();
    },
  });
}
