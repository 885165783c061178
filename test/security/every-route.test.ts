import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { apiWithRoutes, createContext, type Context } from '../helpers/context.js';

/**
 * Every route the app has, found by asking Fastify rather than listed by hand, tried
 * with another user's token and with a read-only token. A route added later is tried
 * here without anyone remembering to: if it cannot be classified, the test fails.
 */
let ctx: Context;
let routes: { method: string; url: string }[] = [];
let readOnly: string;
const ids: Record<string, number> = {};

before(async () => {
  ctx = await createContext();
  const probe = await apiWithRoutes(ctx);
  await probe.app.close();
  for (const r of probe.routes) {
    for (const method of [r.method].flat()) {
      if (method !== 'HEAD') routes.push({ method, url: r.url });
    }
  }
  routes = routes.filter(
    (r, i) => routes.findIndex((o) => o.method === r.method && o.url === r.url) === i,
  );

  const token = await ctx.api({
    method: 'POST',
    url: '/api/v1/oms/tokens/',
    payload: { username: 'alice', scope: 'read' },
  });
  assert.equal(token.statusCode, 201, token.body);
  readOnly = token.json().key as string;
  const hook = await ctx.createWebhook({}, 'alice');
  assert.equal(await ctx.publish(hook.id as number), 202);
  await ctx.worker.runOnce();
  const event = await ctx.db.query<{ id: number }>(
    'select id from hook_events where webhook_id = $1',
    [hook.id],
  );
  ids.webhooks = hook.id as number;
  ids.oms_hook_events = event.rows[0]!.id;
  ids.tokens = (
    await ctx.db.query<{ id: number }>('select min(id)::int as id from api_tokens')
  ).rows[0]!.id;
  ids.event_types = (
    await ctx.db.query<{ id: number }>('select min(id)::int as id from event_types')
  ).rows[0]!.id;
  ids.content_types = 4;
});
after(() => ctx.close());

/** The resource an `:id` in the path refers to, from the segment before it. */
function idFor(url: string): number {
  const m = /\/([a-z_]+)\/:id\//.exec(url);
  const id = m ? ids[m[1]!] : undefined;
  assert.ok(id !== undefined, `no object to try for ${url}: add its resource to this test`);
  return id;
}

const PUBLIC = new Set(['/healthz', '/api/v1/openapi.json']);
/** Routes every user may call on their own data: lists, which filter by owner, and reads of shared catalogs. */
const isCatalogRead = (method: string, url: string) =>
  method === 'GET' &&
  (url.startsWith('/api/v1/oms/event_types/') || url.startsWith('/api/v1/oms/content_types/'));

test('the route table is what this test expects to cover', () => {
  assert.ok(routes.length >= 25, `found ${routes.length} routes`);
  assert.ok(routes.some((r) => r.url.includes('/attempts/')));
  assert.ok(routes.some((r) => r.url.includes('bulk-resend')));
});

test("another user's token: 404 on every route that names alice's object, 403 on admin routes, nothing changes", async () => {
  const before = await ctx.db.query('select * from webhooks order by id');
  const tried: string[] = [];
  for (const { method, url } of routes) {
    if (PUBLIC.has(url) || !url.includes(':id') || isCatalogRead(method, url)) continue;
    const path = url.replace(':id', String(idFor(url)));
    const res = await ctx.api({
      method: method as 'GET',
      url: path,
      as: 'bob',
      payload: method === 'GET' || method === 'DELETE' ? undefined : {},
    });
    const adminRoute = /\/(tokens|event_types|content_types)\//.test(url);
    assert.equal(
      res.statusCode,
      adminRoute ? 403 : 404,
      `${method} ${url} -> ${res.statusCode} ${res.body}`,
    );
    tried.push(`${method} ${url}`);
  }
  assert.ok(tried.length >= 10, tried.join(', '));
  // Routes without an id that act on objects chosen in the body.
  const resend = await ctx.api({
    method: 'POST',
    url: '/api/v1/oms/oms_hook_events/resend-event/',
    as: 'bob',
    payload: {
      event: (await ctx.db.query<{ uuid: string }>('select uuid::text as uuid from hook_events'))
        .rows[0]!.uuid,
      force: true,
    },
  });
  assert.equal(resend.statusCode, 404);
  const bulk = await ctx.api({
    method: 'POST',
    url: '/api/v1/oms/oms_hook_events/bulk-resend/',
    as: 'bob',
    payload: { webhook: ids.webhooks },
  });
  assert.ok(bulk.statusCode === 202 || bulk.statusCode === 404, bulk.body);
  if (bulk.statusCode === 202) assert.equal(bulk.json().count, 0);
  for (const url of [
    '/api/v1/oms/oms_hook_events/publish-event/',
    '/api/v1/oms/oms_hook_events/emit/',
  ]) {
    assert.equal(
      (await ctx.api({ method: 'POST', url, as: 'bob', payload: {} })).statusCode,
      403,
      url,
    );
  }
  const after = await ctx.db.query('select * from webhooks order by id');
  assert.deepEqual(after.rows, before.rows);
});

test('a read-only token gets 403 on every route that is not a read, and changes nothing', async () => {
  const counts = async () =>
    (
      await ctx.db.query<{ n: string }>(
        `select (select count(*) from webhooks) || '/' || (select count(*) from hook_events) || '/' ||
              (select count(*) from api_tokens where revoked_date is null) || '/' || (select count(*) from event_types) as n`,
      )
    ).rows[0]!.n;
  const before = await counts();
  let tried = 0;
  for (const { method, url } of routes) {
    if (method === 'GET' || PUBLIC.has(url)) continue;
    const path = url.includes(':id') ? url.replace(':id', String(idFor(url))) : url;
    const res = await ctx.app.inject({
      method: method as 'POST',
      url: path,
      headers: { authorization: `Token ${readOnly}` },
      ...(method === 'DELETE' ? {} : { payload: {} }),
    });
    assert.equal(res.statusCode, 403, `${method} ${url} -> ${res.statusCode} ${res.body}`);
    tried++;
  }
  assert.ok(tried >= 15, `only ${tried} write routes tried`);
  assert.equal(await counts(), before);
});
