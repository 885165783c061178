import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { apiWithRoutes, createContext, type Context } from '../helpers/context.js';

/**
 * The OpenAPI document is made at its first request, from the routes the app noted as
 * they were added (src/api/openapi.ts): every route the app has is in it, with the
 * schemas it was given, and the hidden ones and HEAD are not.
 */
let ctx: Context;
let app: FastifyInstance;
let routes: { method: string; url: string; hidden: boolean }[];

before(async () => {
  ctx = await createContext();
  const probe = await apiWithRoutes(ctx);
  app = probe.app;
  routes = probe.routes.flatMap((r) => {
    const hidden = (r.schema as { hide?: boolean } | undefined)?.hide === true;
    return [r.method].flat().map((method) => ({ method, url: r.url, hidden }));
  });
});
after(async () => {
  await app?.close();
  await ctx?.close();
});

interface Document {
  openapi: string;
  components: { securitySchemes: Record<string, unknown> };
  paths: Record<string, Record<string, { requestBody?: unknown; parameters?: unknown[] }>>;
}

test('every route the app has is described, hidden ones and HEAD left out', async () => {
  const res = await app.inject({ method: 'GET', url: '/api/v1/openapi.json' });
  assert.equal(res.statusCode, 200, res.body);
  const doc = res.json<Document>();
  assert.match(doc.openapi, /^3\./);
  assert.deepEqual(Object.keys(doc.components.securitySchemes), ['token']);

  const described = new Set<string>();
  for (const [path, operations] of Object.entries(doc.paths))
    for (const method of Object.keys(operations)) described.add(`${method.toUpperCase()} ${path}`);
  const expected = new Set(
    routes
      .filter((r) => !r.hidden && r.method !== 'HEAD')
      .map((r) => `${r.method} ${r.url.replace(/:(\w+)/g, '{$1}')}`),
  );
  assert.ok(expected.size > 20, `${expected.size} routes`);
  assert.deepEqual([...described].sort(), [...expected].sort());
  assert.ok(!Object.keys(doc.paths).some((p) => p.includes('healthz') || p.includes('openapi')));

  const publish = doc.paths['/api/v1/oms/oms_hook_events/publish-event/']!.post!;
  assert.ok(publish.requestBody, 'the publish body is described');
  const list = doc.paths['/api/v1/oms/oms_hook_events/']!.get!;
  assert.ok((list.parameters ?? []).length > 5, 'the list filters are described');

  const again = await app.inject({ method: 'GET', url: '/api/v1/openapi.json' });
  assert.equal(again.body, res.body, 'made once, then served as made');
});
