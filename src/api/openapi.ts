import type { FastifyInstance, RouteOptions } from 'fastify';

const SPEC = {
  openapi: {
    info: { title: 'oms-hooks', version: '0.1.0', description: 'The OMS webhook event API.' },
    components: {
      securitySchemes: { token: { type: 'apiKey' as const, in: 'header', name: 'Authorization' } },
    },
    security: [{ token: [] }],
  },
};

/**
 * The OpenAPI document, made by @fastify/swagger at its first request rather than at
 * start. The plugin must see each route as it is added, so registered on the app it
 * was loaded by every process, and with it `yaml` (for a YAML document the service
 * never serves) and their helpers: 0.8 MB of a service's heap at rest (a heap
 * snapshot, 16.4 MB against 17.2) held for an endpoint read now and then. Here the app
 * only notes its routes; the first request loads the plugin into a Fastify of its own,
 * adds the same routes (their schemas, no handlers of ours) and keeps the document it
 * makes. HEAD routes are left out, as the plugin leaves them.
 */
export function openApiDocument(app: FastifyInstance): () => Promise<unknown> {
  const routes: RouteOptions[] = [];
  app.addHook('onRoute', (route) => {
    if (route.method !== 'HEAD') routes.push(route);
  });
  let made: Promise<unknown> | undefined;
  return () => {
    made ??= describe(routes).catch((error: unknown) => {
      made = undefined;
      throw error;
    });
    return made;
  };
}

async function describe(routes: readonly RouteOptions[]): Promise<unknown> {
  const [{ default: Fastify }, { default: swagger }] = await Promise.all([
    import('fastify'),
    import('@fastify/swagger'),
  ]);
  const shadow = Fastify({ exposeHeadRoutes: false });
  try {
    // nothing is validated or serialized here: the schemas only describe
    shadow.setValidatorCompiler(() => () => true);
    shadow.setSerializerCompiler(() => (data) => JSON.stringify(data));
    await shadow.register(swagger, SPEC);
    for (const { method, url, schema, config } of routes)
      shadow.route({ method, url, schema, config, handler: async () => null });
    await shadow.ready();
    return shadow.swagger();
  } finally {
    await shadow.close();
  }
}
