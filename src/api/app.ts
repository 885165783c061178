import formbody from '@fastify/formbody';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyPluginAsync,
} from 'fastify';
import qs from 'qs';
import type { Clock } from '../core/clock.js';
import { markLongNumbers, roundMarked, unmarkNumbers } from '../core/exact-json.js';
import type { Config } from '../config/config.js';
import type { Sender } from '../delivery/sender.js';
import type { Handoff } from '../queue/handoff.js';
import type { Db } from '../store/db.js';
import { authHook, maskForReadOnly } from './auth.js';
import { installErrorHandling } from './errors.js';
import { Lookups } from './lookups.js';
import { openApiDocument } from './openapi.js';
import { lazyChildLogger } from './request-logger.js';
import { attemptRoutes } from './routes/attempts.js';
import { catalogRoutes } from './routes/catalog.js';
import { hookEventRoutes } from './routes/hook-events.js';
import { recoveryRoutes } from './routes/recovery.js';
import { rotationRoutes } from './routes/rotation.js';
import { tokenRoutes } from './routes/tokens.js';
import { webhookRoutes } from './routes/webhooks.js';

export interface AppDeps {
  db: Db;
  clock: Clock;
  config: Config;
  sender: Sender;
  /** Short-lived caches of tokens, webhooks and content types; each app makes its own. */
  lookups?: Lookups;
  /** A worker beside the API that takes published events without claiming them. */
  handoff?: Handoff;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * The route's `instance` keeps the numbers a JavaScript number would round as they
     * were sent (src/core/exact-json.ts): publishing and emitting.
     */
    exactInstance?: boolean;
  }
}

/**
 * JSON bodies as Fastify parses them (a `__proto__` or `constructor.prototype` key is
 * refused), but for a route whose `instance` is kept exact: there every number of more
 * than 15 digits is parsed as a marked string, and turned back into a rounded number
 * outside the instance, where numbers are ids and counts as before.
 */
function installJsonParser(app: FastifyInstance): void {
  const json = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    const text = body as string;
    if (!request.routeOptions.config.exactInstance) return json(request, text, done);
    const marked = markLongNumbers(text);
    if (marked === text) return json(request, text, done);
    json(request, marked, (error, value) => {
      if (error) return done(error);
      if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
        const fields = value as Record<string, unknown>;
        for (const key of Object.keys(fields))
          if (key !== 'instance') fields[key] = roundMarked(fields[key]);
      }
      done(null, value);
    });
  });
}

/** The deps routes get: AppDeps with the app's own lookups filled in. */
export type ApiDeps = AppDeps & { lookups: Lookups };

export const typed = (app: FastifyInstance) => app.withTypeProvider<TypeBoxTypeProvider>();

/**
 * The whole HTTP API as one plugin. It is not encapsulated, so its error and not-found
 * handlers answer for the app that registers it.
 */
export const omsHooksApi: FastifyPluginAsync<AppDeps> = async (app, options) => {
  const deps: ApiDeps = {
    ...options,
    lookups: options.lookups ?? new Lookups(options.db, options.clock),
  };
  installErrorHandling(app);
  installJsonParser(app);
  // an event's numbers kept exact are written back as numbers in every answer
  app.addHook('onSend', async (_request, _reply, payload) =>
    typeof payload === 'string' ? unmarkNumbers(payload) : payload,
  );
  // Form bodies as DRF takes them; `instance[pk]=1` nests.
  await app.register(formbody, { parser: (body: string) => qs.parse(body, { depth: 3 }) });
  const openApi = openApiDocument(app);

  app.get('/api/v1/openapi.json', { schema: { hide: true } }, openApi);
  app.get('/healthz', { schema: { hide: true } }, async () => {
    await deps.db.query('select 1');
    return { status: 'ok' };
  });

  await app.register(async (scoped) => {
    scoped.decorateRequest('user', undefined);
    scoped.addHook(
      'onRequest',
      authHook(deps.lookups, {
        rateLimitPerSecond: deps.config.rateLimitPerSecond,
        clock: deps.clock,
      }),
    );
    scoped.addHook('preSerialization', maskForReadOnly);
    await hookEventRoutes(scoped, deps);
    await attemptRoutes(scoped, deps);
    await recoveryRoutes(scoped, deps);
    await webhookRoutes(scoped, deps);
    await catalogRoutes(scoped, deps);
    await tokenRoutes(scoped, deps);
    await rotationRoutes(scoped, deps);
  });
};
(omsHooksApi as unknown as Record<symbol, boolean>)[Symbol.for('skip-override')] = true;

export function buildApp(deps: AppDeps, logger?: FastifyBaseLogger): FastifyInstance {
  const app = Fastify({
    ...(logger
      ? { loggerInstance: logger, childLoggerFactory: lazyChildLogger }
      : { logger: false }),
    bodyLimit: deps.config.bodyLimitBytes,
    ajv: {
      customOptions: {
        allErrors: true,
        coerceTypes: true,
        removeAdditional: false,
        allowUnionTypes: true,
      },
    },
  });
  void app.register(omsHooksApi, deps);
  return app;
}
