import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { InjectOptions } from 'fastify';
import { createContext, type Context } from '../helpers/context.js';

type Json = Record<string, unknown>;
const MASK = '********';

let ctx: Context;
let readOnly: string; // alice's read-scoped token
let aliceHook: Json;
let aliceEventUuid: string;
let aliceEventId: number;

const as = (key: string, options: InjectOptions) =>
  ctx.app.inject({
    ...options,
    headers: { ...options.headers, authorization: `Token ${key}` },
  });

before(async () => {
  ctx = await createContext();
  const res = await ctx.api({
    method: 'POST',
    url: '/api/v1/oms/tokens/',
    payload: { username: 'alice', scope: 'read', name: 'dashboard' },
  });
  assert.equal(res.statusCode, 201, res.body);
  assert.equal(res.json().scope, 'read');
  readOnly = res.json().key as string;
  aliceHook = await ctx.createWebhook({}, 'alice');
  assert.equal(await ctx.publish(aliceHook.id as number), 202);
  const { rows } = await ctx.db.query<{ id: number; uuid: string }>(
    'select id, uuid::text as uuid from hook_events where webhook_id = $1',
    [aliceHook.id],
  );
  aliceEventId = rows[0]!.id;
  aliceEventUuid = rows[0]!.uuid;
});
after(() => ctx.close());

/** Every route of the API that touches one of alice's objects, or needs admin. */
function routes(): { name: string; options: InjectOptions; ownerOnly: boolean }[] {
  const w = `/api/v1/oms/webhooks/${aliceHook.id as number}/`;
  const body = { target_url: ctx.receiver.url(), event_type: 'package.created' };
  const instance = { pk: 1, model: 'package', data: { a: 1 } };
  return [
    { name: 'get webhook', options: { method: 'GET', url: w }, ownerOnly: true },
    { name: 'put webhook', options: { method: 'PUT', url: w, payload: body }, ownerOnly: true },
    { name: 'patch webhook', options: { method: 'PATCH', url: w, payload: {} }, ownerOnly: true },
    { name: 'delete webhook', options: { method: 'DELETE', url: w }, ownerOnly: true },
    {
      name: 'rotate secret',
      options: { method: 'POST', url: `${w}rotate-secret/`, payload: {} },
      ownerOnly: true,
    },
    {
      name: 'get event',
      options: { method: 'GET', url: `/api/v1/oms/oms_hook_events/${aliceEventId}/` },
      ownerOnly: true,
    },
    {
      name: 'resend event',
      options: {
        method: 'POST',
        url: '/api/v1/oms/oms_hook_events/resend-event/',
        payload: { event: aliceEventUuid, force: true },
      },
      ownerOnly: true,
    },
    {
      name: 'publish',
      options: {
        method: 'POST',
        url: '/api/v1/oms/oms_hook_events/publish-event/',
        payload: { hook: aliceHook.id, instance },
      },
      ownerOnly: false,
    },
    {
      name: 'emit',
      options: {
        method: 'POST',
        url: '/api/v1/oms/oms_hook_events/emit/',
        payload: { event_type: 'package.created', instance },
      },
      ownerOnly: false,
    },
    {
      name: 'list tokens',
      options: { method: 'GET', url: '/api/v1/oms/tokens/' },
      ownerOnly: false,
    },
    {
      name: 'create token',
      options: {
        method: 'POST',
        url: '/api/v1/oms/tokens/',
        payload: { username: 'bob', scope: 'admin' },
      },
      ownerOnly: false,
    },
    {
      name: 'revoke token',
      options: { method: 'DELETE', url: '/api/v1/oms/tokens/1/' },
      ownerOnly: false,
    },
    {
      name: 'create event type',
      options: { method: 'POST', url: '/api/v1/oms/event_types/', payload: { name: 'x.y' } },
      ownerOnly: false,
    },
  ];
}

describe('another user and a read-only token', () => {
  test("bob gets 404 on alice's objects and 403 on admin routes, and changes nothing", async () => {
    const snapshot = async () =>
      JSON.stringify(
        (
          await ctx.db.query(
            `select w.secret_key, w.previous_secret_key, w.target_url, w.modified_date::text,
               (select count(*) from hook_events) as events, (select count(*) from api_tokens) as tokens,
               (select count(*) from event_types) as types
             from webhooks w where w.id = $1`,
            [aliceHook.id],
          )
        ).rows,
      );
    const before = await snapshot();
    const sent = ctx.receiver.requests.length;
    for (const { name, options, ownerOnly } of routes()) {
      const res = await ctx.api({ ...options, as: 'bob' });
      assert.equal(res.statusCode, ownerOnly ? 404 : 403, `${name}: ${res.body}`);
    }
    assert.equal(await snapshot(), before);
    assert.equal(ctx.receiver.requests.length, sent, 'no resend went out');
  });

  test('a read-only token may only read: 403 on every other method, nothing changes', async () => {
    const before = ctx.receiver.requests.length;
    for (const { name, options } of routes()) {
      if (options.method === 'GET') continue;
      const res = await as(readOnly, options);
      assert.equal(res.statusCode, 403, `${name}: ${res.body}`);
    }
    for (const payload of [{ target_url: ctx.receiver.url(), event_type: 'package.created' }]) {
      const res = await as(readOnly, { method: 'POST', url: '/api/v1/oms/webhooks/', payload });
      assert.equal(res.statusCode, 403);
    }
    assert.equal(ctx.receiver.requests.length, before);
    const { rows } = await ctx.db.query<{ n: number }>(
      'select count(*)::int as n from webhooks where id = $1',
      [aliceHook.id],
    );
    assert.equal(rows[0]!.n, 1, 'the DELETE did not happen');
  });

  test("a read-only token sees its user's objects with secret_key masked", async () => {
    const one = await as(readOnly, {
      method: 'GET',
      url: `/api/v1/oms/webhooks/${aliceHook.id as number}/`,
    });
    assert.equal(one.statusCode, 200);
    assert.equal(one.json().secret_key, MASK);
    const list = await as(readOnly, { method: 'GET', url: '/api/v1/oms/webhooks/' });
    assert.equal(list.statusCode, 200);
    assert.ok((list.json().results as Json[]).every((w) => w.secret_key === MASK));
    const events = await as(readOnly, { method: 'GET', url: '/api/v1/oms/oms_hook_events/' });
    assert.equal(events.statusCode, 200);
    assert.equal((events.json().results as { webhook: Json }[])[0]!.webhook.secret_key, MASK);
    for (const body of [one.body, list.body, events.body]) {
      assert.ok(!body.includes(aliceHook.secret_key as string));
    }
    // alice's write token still sees the secret; bob's list does not show alice's hook
    const own = await ctx.api({
      method: 'GET',
      url: `/api/v1/oms/webhooks/${aliceHook.id as number}/`,
      as: 'alice',
    });
    assert.equal(own.json().secret_key, aliceHook.secret_key);
    const bobs = await ctx.api({ method: 'GET', url: '/api/v1/oms/webhooks/', as: 'bob' });
    assert.equal((bobs.json().results as Json[]).length, 0);
  });

  test("masking leaves the publisher's payload alone, even a field named secret_key", async () => {
    assert.equal(
      await ctx.publish(aliceHook.id as number, { secret_key: 'the customer field' }),
      202,
    );
    const events = await as(readOnly, { method: 'GET', url: '/api/v1/oms/oms_hook_events/' });
    const results = events.json().results as {
      webhook: Json;
      request_payload: { payload: Json };
    }[];
    const mine = results.find((e) => e.request_payload.payload.secret_key !== undefined);
    assert.ok(mine, 'the event is listed');
    assert.equal(mine.request_payload.payload.secret_key, 'the customer field');
    assert.equal(mine.webhook.secret_key, MASK);
  });

  test("scopes: an admin user's write token is not admin; scope admin makes an admin", async () => {
    const write = await ctx.api({
      method: 'POST',
      url: '/api/v1/oms/tokens/',
      payload: { username: 'admin', scope: 'write' },
    });
    assert.equal(write.statusCode, 201, write.body);
    assert.deepEqual([write.json().scope, write.json().is_admin], ['write', false]);
    const tokens = await as(write.json().key as string, {
      method: 'GET',
      url: '/api/v1/oms/tokens/',
    });
    assert.equal(tokens.statusCode, 403);
    const publish = await as(write.json().key as string, {
      method: 'POST',
      url: '/api/v1/oms/oms_hook_events/publish-event/',
      payload: { hook: aliceHook.id, instance: { pk: 1, model: 'package', data: {} } },
    });
    assert.equal(publish.statusCode, 403);

    const admin = await ctx.api({
      method: 'POST',
      url: '/api/v1/oms/tokens/',
      payload: { username: 'ops', scope: 'admin' },
    });
    assert.deepEqual([admin.json().scope, admin.json().is_admin], ['admin', true]);
    const list = await as(admin.json().key as string, {
      method: 'GET',
      url: '/api/v1/oms/tokens/',
    });
    assert.equal(list.statusCode, 200);
    const scopes = Object.fromEntries(
      (list.json() as Json[]).map((t) => [t.name || t.user, t.scope]),
    );
    assert.equal(scopes.dashboard, 'read');
    const bad = await ctx.api({
      method: 'POST',
      url: '/api/v1/oms/tokens/',
      payload: { username: 'x', scope: 'root' },
    });
    assert.equal(bad.statusCode, 400);
  });
});

describe('limits', () => {
  let limited: Context;
  before(async () => {
    limited = await createContext({ RATE_LIMIT_PER_SECOND: '2', MAX_PAYLOAD_BYTES: '1000' });
  });
  after(() => limited.close());

  test('per-token rate limit: 429 with Retry-After once the burst is spent, per token, refilled by time', async () => {
    const get = (who: 'alice' | 'bob') =>
      limited.api({ method: 'GET', url: '/api/v1/oms/webhooks/', as: who });
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push((await get('alice')).statusCode);
    assert.deepEqual(statuses, [200, 200, 200, 200, 429]);
    const throttled = await get('alice');
    assert.equal(throttled.statusCode, 429);
    assert.equal(throttled.headers['retry-after'], '1');
    assert.match(throttled.json().detail as string, /throttled/);
    assert.equal((await get('bob')).statusCode, 200, 'another token has its own bucket');
    limited.clock.advance(1000);
    assert.deepEqual(
      [(await get('alice')).statusCode, (await get('alice')).statusCode],
      [200, 200],
    );
    assert.equal((await get('alice')).statusCode, 429);
  });

  test('a payload over MAX_PAYLOAD_BYTES is refused at publish and emit with 413, nothing queued', async () => {
    const hook = await limited.createWebhook();
    const big = { text: 'x'.repeat(1200) };
    const publish = await limited.api({
      method: 'POST',
      url: '/api/v1/oms/oms_hook_events/publish-event/',
      payload: { hook: hook.id, instance: { pk: 1, model: 'package', data: big } },
    });
    assert.equal(publish.statusCode, 413);
    assert.deepEqual(Object.keys(publish.json()), ['detail']);
    const emit = await limited.api({
      method: 'POST',
      url: '/api/v1/oms/oms_hook_events/emit/',
      payload: { event_type: 'package.created', instance: { pk: 1, model: 'package', data: big } },
    });
    assert.equal(emit.statusCode, 413);
    const { rows } = await limited.db.query<{ n: number }>(
      'select count(*)::int as n from hook_events',
    );
    assert.equal(rows[0]!.n, 0);
    limited.clock.advance(10_000);
    assert.equal(await limited.publish(hook.id as number, { text: 'x'.repeat(500) }), 202);
  });

  test('a request body over the body limit is 413', async () => {
    limited.clock.advance(10_000);
    const res = await limited.api({
      method: 'POST',
      url: '/api/v1/oms/webhooks/',
      payload: {
        target_url: 'http://example.com/',
        event_type: 'package.created',
        x: 'y'.repeat(1024 * 1024),
      },
    });
    assert.equal(res.statusCode, 413);
  });
});
