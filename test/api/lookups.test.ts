import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/api/app.js';
import { Lookups, LOOKUP_TTL_MS } from '../../src/api/lookups.js';
import { GROUP_COMMIT_DEFAULTS, PGLITE_GROUP_COMMIT } from '../../src/queue/group-commit.js';
import type { Db, QueryResult } from '../../src/store/db.js';
import { createContext, type Context } from '../helpers/context.js';

/**
 * The short-lived lookup caches of the publish path: what they save, and how soon a
 * change shows, whether made through this API (at once) or elsewhere (within the TTL).
 */

const PUBLISH = '/api/v1/oms/oms_hook_events/publish-event/';
const EMIT = '/api/v1/oms/oms_hook_events/emit/';
const TOKENS = '/api/v1/oms/tokens/';
const WEBHOOKS = '/api/v1/oms/webhooks/';
const CONTENT_TYPES = '/api/v1/oms/content_types/';

const READS = {
  token: /from api_tokens t join users u/,
  webhook: /from webhooks w where w\.id = \$1/,
  contentType: /from content_types where model = \$1/,
  insert: /insert into hook_events/,
};
type Kind = keyof typeof READS;

/**
 * The test's database as the app sees it, recording the statements that reach it and
 * able to hold the hook-event inserts at a gate. Everything else passes straight on.
 */
class Recorder {
  readonly seen: Record<Kind, number> = { token: 0, webhook: 0, contentType: 0, insert: 0 };
  /** Every hook-event insert: how many events it carried and whether it committed. */
  readonly inserts: { events: number; ok: boolean }[] = [];
  entered = 0;
  private gate: Promise<void> | undefined;
  private open: (() => void) | undefined;
  readonly db: Db;

  constructor(inner: Db) {
    const query = async <R>(sql: string, params?: readonly unknown[]) => {
      for (const kind of Object.keys(READS) as Kind[]) if (READS[kind].test(sql)) this.seen[kind]++;
      if (!READS.insert.test(sql)) return inner.query<R>(sql, params);
      this.entered++;
      if (this.gate) await this.gate;
      const events = (JSON.parse(String(params?.[0])) as unknown[]).length;
      try {
        const result: QueryResult<R> = await inner.query<R>(sql, params);
        this.inserts.push({ events, ok: true });
        return result;
      } catch (error) {
        this.inserts.push({ events, ok: false });
        throw error;
      }
    };
    this.db = { ...inner, query };
  }

  reset(): void {
    for (const kind of Object.keys(this.seen) as Kind[]) this.seen[kind] = 0;
  }

  hold(): void {
    this.gate = new Promise((resolve) => (this.open = resolve));
  }

  release(): void {
    this.open?.();
    this.gate = undefined;
  }
}

let ctx: Context;
before(async () => {
  ctx = await createContext();
});
after(() => ctx.close());

/** A second app on the same database, the clock and the config of the context. */
async function appOn(db: Db, setup?: (app: FastifyInstance) => void): Promise<FastifyInstance> {
  const app = buildApp({ db, clock: ctx.clock, config: ctx.config, sender: ctx.sender });
  setup?.(app);
  await app.ready();
  return app;
}

const publishOn = (app: FastifyInstance, hook: number, model = 'package') =>
  app.inject({
    method: 'POST',
    url: PUBLISH,
    headers: { authorization: `Token ${ctx.tokens.admin}` },
    payload: { hook, instance: { pk: 1, model, data: { n: 1 } } },
  });

const publish = (hook: number, extra: Record<string, unknown> = {}) =>
  ctx.api({
    method: 'POST',
    url: PUBLISH,
    payload: { hook, instance: { pk: 1, model: 'package', data: { n: 1 } }, ...extra },
  });

/** One turn of the event loop: what a test waits for instead of a clock. */
const turn = () => new Promise((resolve) => setImmediate(resolve));

const noSuchHook = (hook: number) => ({
  hook: [`Invalid pk "${hook}" - object does not exist.`],
});

async function eventsOf(hook: number): Promise<number> {
  const { rows } = await ctx.db.query<{ n: number }>(
    'select count(*)::int as n from hook_events where webhook_id = $1',
    [hook],
  );
  return rows[0]!.n;
}

describe('what the caches save', () => {
  test('within the TTL a publish reads no token, webhook or content type; after it, each once', async () => {
    const recorder = new Recorder(ctx.db);
    const app = await appOn(recorder.db);
    try {
      const hook = (await ctx.createWebhook()).id as number;
      assert.equal((await publishOn(app, hook)).statusCode, 202);
      assert.deepEqual(recorder.seen, { token: 1, webhook: 1, contentType: 1, insert: 1 });

      recorder.reset();
      for (let i = 0; i < 3; i++) assert.equal((await publishOn(app, hook)).statusCode, 202);
      assert.deepEqual(recorder.seen, { token: 0, webhook: 0, contentType: 0, insert: 3 });

      recorder.reset();
      ctx.clock.advance(LOOKUP_TTL_MS);
      assert.equal((await publishOn(app, hook)).statusCode, 202);
      assert.deepEqual(recorder.seen, { token: 1, webhook: 1, contentType: 1, insert: 1 });
      assert.equal(await eventsOf(hook), 5);
    } finally {
      await app.close();
    }
  });

  test('an unknown key is looked up every time, never remembered', async () => {
    const recorder = new Recorder(ctx.db);
    const app = await appOn(recorder.db);
    try {
      for (let i = 0; i < 2; i++) {
        const res = await app.inject({
          method: 'GET',
          url: WEBHOOKS,
          headers: { authorization: `Token ${'0'.repeat(40)}` },
        });
        assert.equal(res.statusCode, 401);
      }
      assert.equal(recorder.seen.token, 2);
    } finally {
      await app.close();
    }
  });

  test('every app has caches of its own', async () => {
    const hook = (await ctx.createWebhook()).id as number;
    const first = new Recorder(ctx.db);
    const second = new Recorder(ctx.db);
    const [a, b] = [await appOn(first.db), await appOn(second.db)];
    try {
      assert.equal((await publishOn(a, hook)).statusCode, 202);
      assert.equal((await publishOn(b, hook)).statusCode, 202);
      assert.deepEqual([first.seen.webhook, second.seen.webhook], [1, 1]);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });
});

describe('tokens', () => {
  async function issue(username: string): Promise<{ id: number; key: string }> {
    const res = await ctx.api({ method: 'POST', url: TOKENS, payload: { username } });
    assert.equal(res.statusCode, 201, res.body);
    return res.json();
  }
  const listAs = (key: string) =>
    ctx.app.inject({ method: 'GET', url: WEBHOOKS, headers: { authorization: `Token ${key}` } });

  test('a token revoked through the API is refused from the next request on', async () => {
    const { id, key } = await issue('dave');
    assert.equal((await listAs(key)).statusCode, 200); // now cached
    const revoke = await ctx.api({ method: 'DELETE', url: `${TOKENS}${id}/` });
    assert.equal(revoke.statusCode, 204);
    const refused = await listAs(key);
    assert.equal(refused.statusCode, 401);
    assert.deepEqual(refused.json(), { detail: 'Invalid token.' });
  });

  test('a token revoked elsewhere (the CLI) works until the TTL has passed, then is refused', async () => {
    const { id, key } = await issue('erin');
    assert.equal((await listAs(key)).statusCode, 200);
    await ctx.db.query('update api_tokens set revoked_date = now() where id = $1', [id]);
    ctx.clock.advance(LOOKUP_TTL_MS - 1);
    assert.equal((await listAs(key)).statusCode, 200);
    ctx.clock.advance(1);
    assert.equal((await listAs(key)).statusCode, 401);
  });

  test('last_used is still refreshed (at most once a minute) for a token served from the cache', async () => {
    const { id, key } = await issue('frank');
    assert.equal((await listAs(key)).statusCode, 200);
    const stale = `update api_tokens set last_used = now() - interval '2 minutes' where id = $1`;
    const fresh = async () =>
      (
        await ctx.db.query<{ fresh: boolean }>(
          `select last_used > now() - interval '1 minute' as fresh from api_tokens where id = $1`,
          [id],
        )
      ).rows[0]!.fresh;
    await ctx.db.query(stale, [id]);
    assert.equal((await listAs(key)).statusCode, 200);
    assert.equal(await fresh(), false, 'a cache hit does not write');
    ctx.clock.advance(LOOKUP_TTL_MS);
    assert.equal((await listAs(key)).statusCode, 200);
    assert.equal(await fresh(), true);
  });
});

describe('webhooks', () => {
  test('publish sees an update through the API at once', async () => {
    const hook = (await ctx.createWebhook()).id as number;
    assert.equal((await publish(hook)).statusCode, 202); // now cached

    const patch = (body: Record<string, unknown>) =>
      ctx.api({ method: 'PATCH', url: `${WEBHOOKS}${hook}/`, payload: body });
    assert.equal((await patch({ event_type: 'package.*' })).statusCode, 200);
    const pattern = await publish(hook);
    assert.equal(pattern.statusCode, 400);
    assert.deepEqual(pattern.json(), {
      event_type: [`Webhook ${hook} subscribes to "package.*"; name the event type to publish.`],
    });
    assert.equal((await publish(hook, { event_type: 'package.shipped' })).statusCode, 202);

    assert.equal((await patch({ is_active: false })).statusCode, 200);
    const inactive = await publish(hook, { event_type: 'package.shipped' });
    assert.equal(inactive.statusCode, 400);
    assert.deepEqual(inactive.json(), { hook: [`Webhook ${hook} is not active.`] });
  });

  test('publish sees a deletion through the API at once', async () => {
    const hook = (await ctx.createWebhook()).id as number;
    assert.equal((await publish(hook)).statusCode, 202);
    assert.equal((await ctx.api({ method: 'DELETE', url: `${WEBHOOKS}${hook}/` })).statusCode, 204);
    const res = await publish(hook);
    assert.equal(res.statusCode, 400);
    assert.deepEqual(res.json(), noSuchHook(hook));
  });

  test('a secret rotation drops the cached webhook', async () => {
    const recorder = new Recorder(ctx.db);
    const app = await appOn(recorder.db);
    try {
      const hook = (await ctx.createWebhook()).id as number;
      assert.equal((await publishOn(app, hook)).statusCode, 202);
      const rotated = await app.inject({
        method: 'POST',
        url: `${WEBHOOKS}${hook}/rotate-secret/`,
        headers: { authorization: `Token ${ctx.tokens.admin}` },
        payload: {},
      });
      assert.equal(rotated.statusCode, 200, rotated.body);
      recorder.reset();
      assert.equal((await publishOn(app, hook)).statusCode, 202);
      assert.equal(recorder.seen.webhook, 1);
    } finally {
      await app.close();
    }
  });

  test('a webhook deactivated elsewhere (a 410 in a worker) is published to until the TTL passes', async () => {
    const hook = (await ctx.createWebhook()).id as number;
    assert.equal((await publish(hook)).statusCode, 202);
    await ctx.db.query('update webhooks set is_active = false where id = $1', [hook]);
    assert.equal((await publish(hook)).statusCode, 202);
    ctx.clock.advance(LOOKUP_TTL_MS);
    const res = await publish(hook);
    assert.equal(res.statusCode, 400);
    assert.deepEqual(res.json(), { hook: [`Webhook ${hook} is not active.`] });
  });

  test('a cached webhook deleted elsewhere is the same 400 as one never seen, not a 500', async () => {
    const hook = (await ctx.createWebhook()).id as number;
    assert.equal((await publish(hook)).statusCode, 202);
    await ctx.db.query('delete from webhooks where id = $1', [hook]);
    const res = await publish(hook);
    assert.equal(res.statusCode, 400);
    assert.deepEqual(res.json(), noSuchHook(hook));
  });

  test('a publish racing a deletion gets its 400; the publishes gathered with it are written', async () => {
    const recorder = new Recorder(ctx.db);
    let arrived = 0;
    const app = await appOn(recorder.db, (app) =>
      app.addHook('preHandler', async () => {
        arrived++;
      }),
    );
    try {
      const kept = (await ctx.createWebhook()).id as number;
      const doomed = (await ctx.createWebhook()).id as number;
      // Every lookup cached: from preHandler to the group commit a publish is all microtasks.
      for (const hook of [kept, doomed]) assert.equal((await publishOn(app, hook)).statusCode, 202);

      // Hold every write the group commit allows in flight (one on PostgreSQL, two on
      // PGlite), so the next three publishes wait together for the one after.
      const { maxFlushes } = ctx.db.kind === 'pglite' ? PGLITE_GROUP_COMMIT : GROUP_COMMIT_DEFAULTS;
      recorder.hold();
      const held: ReturnType<typeof publishOn>[] = [];
      for (let n = 1; n <= maxFlushes; n++) {
        held.push(publishOn(app, kept));
        while (recorder.entered < 2 + n) await turn();
      }
      await ctx.db.query('delete from webhooks where id = $1', [doomed]); // another process
      arrived = 0;
      const gathered = [publishOn(app, kept), publishOn(app, doomed), publishOn(app, kept)];
      while (arrived < 3) await turn();
      await turn();
      recorder.release();

      const statuses = (await Promise.all([...held, ...gathered])).map((r) => r.statusCode);
      assert.deepEqual(statuses, [...held.map(() => 202), 202, 400, 202]);
      assert.deepEqual((await gathered[1]!).json(), noSuchHook(doomed));
      assert.ok(
        recorder.inserts.some((i) => i.events === 3 && !i.ok),
        `the three were written together first: ${JSON.stringify(recorder.inserts)}`,
      );
      assert.equal(await eventsOf(kept), 1 + held.length + 2);
      assert.equal(await eventsOf(doomed), 0);
    } finally {
      recorder.release();
      await app.close();
    }
  });

  test('an emit racing a deletion goes to the subscribers that remain, not a 500', async () => {
    const recorder = new Recorder(ctx.db);
    const app = await appOn(recorder.db);
    try {
      // an event type of its own, so the other tests' webhooks do not subscribe
      await ctx.db.query(`insert into event_types (name, description) values ($1, '')`, [
        'race.emitted',
      ]);
      const hooks: number[] = [];
      for (let i = 0; i < 3; i++) {
        hooks.push((await ctx.createWebhook({ event_type: 'race.emitted' })).id as number);
      }
      const doomed = hooks[1]!;
      recorder.hold();
      const entered = recorder.entered;
      const emitted = app.inject({
        method: 'POST',
        url: EMIT,
        headers: { authorization: `Token ${ctx.tokens.admin}` },
        payload: { event_type: 'race.emitted', instance: { pk: 1, model: 'package', data: {} } },
      });
      // its subscribers read, its insert waits at the gate; another process deletes one
      while (recorder.entered === entered) await turn();
      await ctx.db.query('delete from webhooks where id = $1', [doomed]);
      recorder.release();

      const res = await emitted;
      assert.equal(res.statusCode, 202, res.body);
      assert.deepEqual(recorder.inserts.slice(-2), [
        { events: 3, ok: false },
        { events: 2, ok: true },
      ]);
      const { rows } = await ctx.db.query<{ uuid: string; webhook_id: number }>(
        `select uuid::text as uuid, webhook_id from hook_events
         where event_type = 'race.emitted' order by webhook_id`,
      );
      assert.deepEqual(
        rows.map((r) => r.webhook_id),
        [hooks[0], hooks[2]],
      );
      const answered = (res.json() as { events: string[] }).events;
      assert.deepEqual([...answered].sort(), rows.map((r) => r.uuid).sort());
    } finally {
      recorder.release();
      await app.close();
    }
  });
});

describe('content types', () => {
  const register = async (model: string) => {
    const res = await ctx.api({ method: 'POST', url: CONTENT_TYPES, payload: { model } });
    assert.equal(res.statusCode, 201, res.body);
    return res.json() as { id: number };
  };
  const publishModel = (hook: number, model: string) =>
    ctx.api({
      method: 'POST',
      url: PUBLISH,
      payload: { hook, instance: { pk: 1, model, data: { n: 1 } } },
    });
  const unknown = (model: string) => ({
    instance: {
      model: [`Unknown model "${model}". Register it at /api/v1/oms/content_types/ first.`],
    },
  });

  test('a model renamed through the API is unknown under its old name at once', async () => {
    const hook = (await ctx.createWebhook()).id as number;
    const { id } = await register('parcel');
    assert.equal((await publishModel(hook, 'parcel')).statusCode, 202);
    const renamed = await ctx.api({
      method: 'PUT',
      url: `${CONTENT_TYPES}${id}/`,
      payload: { model: 'parcel2' },
    });
    assert.equal(renamed.statusCode, 200, renamed.body);
    const res = await publishModel(hook, 'parcel');
    assert.equal(res.statusCode, 400);
    assert.deepEqual(res.json(), unknown('parcel'));
    assert.equal((await publishModel(hook, 'parcel2')).statusCode, 202);
  });

  test('a cached model deleted elsewhere is the 400 of an unknown model', async () => {
    const hook = (await ctx.createWebhook()).id as number;
    const { id } = await register('crate');
    // Read (and cached) by a publish that stops short of writing: no data, no source_url.
    const nodata = await ctx.api({
      method: 'POST',
      url: PUBLISH,
      payload: { hook, instance: { pk: 1, model: 'crate' } },
    });
    assert.equal(nodata.statusCode, 400);
    await ctx.db.query('delete from content_types where id = $1', [id]);
    const res = await publishModel(hook, 'crate');
    assert.equal(res.statusCode, 400);
    assert.deepEqual(res.json(), unknown('crate'));
  });
});

test('the cached webhook answers only the scopes that may see it', async () => {
  const hook = (await ctx.createWebhook({}, 'alice')).id as number;
  const ids = await ctx.db.query<{ username: string; id: number }>(
    `select username, id from users where username in ('alice', 'bob')`,
  );
  const user = Object.fromEntries(ids.rows.map((r) => [r.username, r.id]));
  const lookups = new Lookups(ctx.db, ctx.clock);
  assert.equal((await lookups.webhook({ userId: user.alice!, isAdmin: false }, hook))?.id, hook);
  assert.equal(await lookups.webhook({ userId: user.bob!, isAdmin: false }, hook), undefined);
  assert.equal((await lookups.webhook({ userId: user.bob!, isAdmin: true }, hook))?.id, hook);
});
