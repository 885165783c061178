import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createContext, type Context } from '../helpers/context.js';
import { eventOf } from '../helpers/rows.js';
import { Receiver } from '../helpers/receiver.js';

type Json = Record<string, unknown>;

let ctx: Context;
let authServer: Receiver;
let issued = 0;
before(async () => {
  ctx = await createContext();
  authServer = await Receiver.start();
  authServer.respond(() => {
    issued++;
    return {
      status: 200,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ access: `tok-${issued}`, token: 'wrong-field' }),
    };
  });
});
after(async () => {
  await authServer.close();
  await ctx.close();
});

const tokenAuth = (extra: Json = {}) => ({
  type: 'token',
  url: authServer.url('/auth/token'),
  username: 'integrator',
  password: 'pw-Secret-123',
  token_field: 'access',
  ...extra,
});

describe('token auth against the target', () => {
  test('the token is fetched once with the credentials, cached, and sent in the configured format', async () => {
    const hook = await ctx.createWebhook({
      config: { auth: tokenAuth({ header: 'X-Api-Key', format: 'Bearer {token}' }) },
    });
    const authBefore = authServer.requests.length;
    const start = ctx.receiver.requests.length;
    for (let i = 0; i < 3; i++) assert.equal(await ctx.publish(hook.id as number), 202);
    assert.equal(await ctx.worker.runOnce(), 3);
    assert.equal(await ctx.publish(hook.id as number), 202);
    assert.equal(await ctx.worker.runOnce(), 1);

    const fetches = authServer.requests.slice(authBefore);
    assert.equal(fetches.length, 1, 'one token fetch for four deliveries');
    assert.equal(fetches[0]!.method, 'POST');
    assert.deepEqual(JSON.parse(fetches[0]!.body), {
      username: 'integrator',
      password: 'pw-Secret-123',
    });
    const got = ctx.receiver.requests.slice(start);
    assert.equal(got.length, 4);
    for (const r of got) {
      assert.equal(r.headers['x-api-key'], `Bearer tok-${issued}`);
      assert.equal(r.headers.authorization, undefined);
    }
  });

  test('a 401 from the target fetches a new token once; a second 401 is the outcome', async () => {
    const hook = await ctx.createWebhook({
      config: { auth: tokenAuth({ body: { client_id: 'c1', client_secret: 'cs-Secret-456' } }) },
    });
    const start = ctx.receiver.requests.length;
    const authBefore = authServer.requests.length;
    assert.equal(await ctx.publish(hook.id as number), 202);
    await ctx.worker.runOnce();
    const firstToken = ctx.receiver.requests[start]!.headers.authorization;
    assert.match(String(firstToken), /^Token tok-\d+$/);
    assert.deepEqual(JSON.parse(authServer.requests[authBefore]!.body), {
      client_id: 'c1',
      client_secret: 'cs-Secret-456',
    });

    // the target now refuses the cached token and accepts only a newer one
    ctx.receiver.respond((r) =>
      r.headers.authorization === firstToken ? { status: 401, body: 'expired' } : { status: 200 },
    );
    assert.equal(await ctx.publish(hook.id as number), 202);
    await ctx.worker.runOnce();
    const tries = ctx.receiver.requests.slice(start + 1);
    assert.equal(tries.length, 2);
    assert.equal(tries[0]!.headers.authorization, firstToken);
    assert.notEqual(tries[1]!.headers.authorization, firstToken);
    assert.equal(authServer.requests.length - authBefore, 2);

    // a target that refuses every token gets exactly one retry per attempt, no loop
    ctx.receiver.respond(() => ({ status: 401, body: 'no' }));
    const hook2 = await ctx.createWebhook({
      config: { auth: tokenAuth(), max_retries: 1 },
    });
    const before2 = ctx.receiver.requests.length;
    assert.equal(await ctx.publish(hook2.id as number), 202);
    await ctx.worker.runOnce();
    assert.equal(ctx.receiver.requests.length - before2, 2);
    const event = await eventOf(ctx.db, hook2.id as number);
    assert.equal(event.response_http_status, 401);
    assert.equal(event.delivered, false);
    ctx.receiver.respond(() => ({ status: 200, body: 'ok' }));
  });

  test('an auth URL that fails is a failed attempt with a reason that holds no credential', async () => {
    const failing = await Receiver.start();
    failing.respond(() => ({ status: 403, body: 'bad credentials pw-Secret-123' }));
    try {
      const hook = await ctx.createWebhook({
        config: { auth: tokenAuth({ url: failing.url('/auth') }), max_retries: 1 },
      });
      const start = ctx.receiver.requests.length;
      assert.equal(await ctx.publish(hook.id as number), 202);
      await ctx.worker.runOnce();
      assert.equal(ctx.receiver.requests.length, start, 'nothing sent without a token');
      const event = await eventOf(ctx.db, hook.id as number);
      assert.equal(event.response_http_status, null);
      assert.equal(event.response_content, 'The auth URL answered 403 instead of a token');
    } finally {
      await failing.close();
    }
  });
});

describe('credentials never leave through the API', () => {
  test('passwords and auth bodies are masked; sending the mask back keeps the stored value', async () => {
    const hook = await ctx.createWebhook({
      config: { auth: tokenAuth({ body: { client_secret: 'cs-Secret-456' } }), timeout: 5 },
    });
    const shown = hook.config as { auth: Json };
    assert.equal(shown.auth.password, '********');
    assert.deepEqual(shown.auth.body, { client_secret: '********' });
    assert.equal(shown.auth.username, 'integrator');
    for (const url of [`/api/v1/oms/webhooks/${hook.id as number}/`, '/api/v1/oms/webhooks/']) {
      const res = await ctx.api({ method: 'GET', url });
      assert.ok(!res.body.includes('pw-Secret-123'), url);
      assert.ok(!res.body.includes('cs-Secret-456'), url);
    }
    assert.equal(await ctx.publish(hook.id as number), 202);
    const events = await ctx.api({ method: 'GET', url: '/api/v1/oms/oms_hook_events/' });
    assert.ok(!events.body.includes('pw-Secret-123'));

    const stored = async () =>
      (
        await ctx.db.query<{ auth: Json }>(
          "select config->'auth' as auth from webhooks where id = $1",
          [hook.id],
        )
      ).rows[0]!.auth;
    // PUT what was GOT: the masked values keep the stored ones
    const put = await ctx.api({
      method: 'PUT',
      url: `/api/v1/oms/webhooks/${hook.id as number}/`,
      payload: { ...hook, config: { ...(hook.config as Json), timeout: 7 } },
    });
    assert.equal(put.statusCode, 200, put.body);
    assert.equal((await stored()).password, 'pw-Secret-123');
    assert.deepEqual((await stored()).body, { client_secret: 'cs-Secret-456' });
    // PATCH only another field: untouched
    await ctx.api({
      method: 'PATCH',
      url: `/api/v1/oms/webhooks/${hook.id as number}/`,
      payload: { is_active: true },
    });
    assert.equal((await stored()).password, 'pw-Secret-123');
    // a new password replaces it
    const patched = await ctx.api({
      method: 'PATCH',
      url: `/api/v1/oms/webhooks/${hook.id as number}/`,
      payload: { config: { auth: { type: 'basic', username: 'u', password: 'new-Pass-789' } } },
    });
    assert.equal(patched.statusCode, 200, patched.body);
    assert.equal((patched.json().config as { auth: Json }).auth.password, '********');
    assert.equal((await stored()).password, 'new-Pass-789');
  });

  test('token auth settings are validated', async () => {
    for (const auth of [
      { type: 'token' },
      { type: 'token', url: 'ftp://x/' },
      { type: 'token', url: 'http://x/', format: 'no placeholder' },
      { type: 'token', url: 'http://x/', header: 'bad header' },
      { type: 'token', url: 'http://x/', body: 'text' },
      { type: 'oauth' },
    ]) {
      const res = await ctx.api({
        method: 'POST',
        url: '/api/v1/oms/webhooks/',
        payload: {
          target_url: ctx.receiver.url(),
          event_type: 'package.created',
          config: { auth },
        },
      });
      assert.equal(res.statusCode, 400, JSON.stringify(auth));
      assert.deepEqual(Object.keys(res.json().config as Json), ['auth'], JSON.stringify(auth));
    }
  });
});
