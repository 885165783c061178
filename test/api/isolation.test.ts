import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createContext, type Context } from '../helpers/context.js';

/**
 * Tenant isolation: alice and bob each own webhooks and events. Every route that takes
 * an id answers 404 for the other user's objects, lists hold only one's own, and
 * admins see everything.
 */
const WEBHOOKS = '/api/v1/oms/webhooks/';
const EVENTS = '/api/v1/oms/oms_hook_events/';
const UNDELIVERED = '/api/v1/oms/settings/undelivered_webhooks/';
const NOT_FOUND = { detail: 'Not found.' };
const FORBIDDEN = { detail: 'You do not have permission to perform this action.' };

type Json = Record<string, unknown>;
type User = 'alice' | 'bob';

interface Owned {
  hooks: number[];
  events: { id: number; uuid: string; webhook: number }[];
}

let ctx: Context;
const owned: Record<User, Owned> = {
  alice: { hooks: [], events: [] },
  bob: { hooks: [], events: [] },
};
const other = (user: User): User => (user === 'alice' ? 'bob' : 'alice');

async function webhookRow(id: number): Promise<Json | undefined> {
  const { rows } = await ctx.db.query<Json>(
    `select w.*, u.username from webhooks w join users u on u.id = w.user_id where w.id = $1`,
    [id],
  );
  return rows[0];
}

async function eventRows(): Promise<Json[]> {
  return (await ctx.db.query<Json>('select * from hook_events order by id')).rows;
}

before(async () => {
  ctx = await createContext();
  // Paths ending in /fail answer 500, so those events end up undelivered.
  ctx.receiver.respond((req) =>
    req.path.endsWith('/fail') ? { status: 500, body: 'no' } : { status: 200, body: 'ok' },
  );
  for (const user of ['alice', 'bob'] as const) {
    for (const path of [`/${user}/ok`, `/${user}/fail`]) {
      const hook = await ctx.createWebhook({ target_url: ctx.receiver.url(path) }, user);
      owned[user].hooks.push(hook.id as number);
      assert.equal(await ctx.publish(hook.id as number, { owner: user, path }), 202);
    }
  }
  // Delivery is due at once; one pass attempts all four.
  assert.equal(await ctx.worker.runOnce(), 4);
  const { rows } = await ctx.db.query<{ id: number; uuid: string; webhook_id: number }>(
    'select id, uuid::text as uuid, webhook_id from hook_events order by id',
  );
  for (const row of rows) {
    const user: User = owned.alice.hooks.includes(row.webhook_id) ? 'alice' : 'bob';
    owned[user].events.push({ id: row.id, uuid: row.uuid, webhook: row.webhook_id });
  }
  assert.equal(owned.alice.events.length, 2);
  assert.equal(owned.bob.events.length, 2);
});
after(() => ctx.close());

describe('webhook routes with an id', () => {
  for (const user of ['alice', 'bob'] as const) {
    const victim = other(user);

    test(`${user} gets 404 on GET of ${victim}'s webhooks`, async () => {
      for (const id of owned[victim].hooks) {
        const res = await ctx.api({ method: 'GET', url: `${WEBHOOKS}${id}/`, as: user });
        assert.equal(res.statusCode, 404);
        assert.deepEqual(res.json(), NOT_FOUND);
      }
      // ...and 200 on their own, so the 404 is about ownership.
      for (const id of owned[user].hooks) {
        const res = await ctx.api({ method: 'GET', url: `${WEBHOOKS}${id}/`, as: user });
        assert.equal(res.statusCode, 200);
        assert.equal(res.json().id, id);
      }
    });

    test(`${user} gets 404 on PUT, PATCH and DELETE of ${victim}'s webhook; nothing changes`, async () => {
      const id = owned[victim].hooks[0]!;
      const before = await webhookRow(id);
      const eventsBefore = await eventRows();
      const put = await ctx.api({
        method: 'PUT',
        url: `${WEBHOOKS}${id}/`,
        as: user,
        payload: {
          target_url: 'https://attacker.example.com/',
          event_type: 'package.created',
          secret_key: 'stolen',
        },
      });
      assert.equal(put.statusCode, 404);
      assert.deepEqual(put.json(), NOT_FOUND);
      const patch = await ctx.api({
        method: 'PATCH',
        url: `${WEBHOOKS}${id}/`,
        as: user,
        payload: { target_url: 'https://attacker.example.com/', is_active: false },
      });
      assert.equal(patch.statusCode, 404);
      assert.deepEqual(patch.json(), NOT_FOUND);
      const del = await ctx.api({ method: 'DELETE', url: `${WEBHOOKS}${id}/`, as: user });
      assert.equal(del.statusCode, 404);
      assert.deepEqual(del.json(), NOT_FOUND);

      const after = await webhookRow(id);
      assert.ok(after, 'the webhook still exists');
      assert.deepEqual(after, before);
      assert.equal(after.username, victim);
      assert.deepEqual(await eventRows(), eventsBefore, 'no event was touched');
    });

    test(`${user}'s invalid PATCH of ${victim}'s webhook is 404, not a validation error`, async () => {
      const id = owned[victim].hooks[0]!;
      const res = await ctx.api({
        method: 'PATCH',
        url: `${WEBHOOKS}${id}/`,
        as: user,
        payload: { target_url: 'ftp://nope' },
      });
      assert.equal(res.statusCode, 404);
      assert.deepEqual(res.json(), NOT_FOUND);
    });
  }

  test('the admin may read and change anyone’s webhook', async () => {
    const id = owned.alice.hooks[0]!;
    const get = await ctx.api({ method: 'GET', url: `${WEBHOOKS}${id}/` });
    assert.equal(get.statusCode, 200);
    const patch = await ctx.api({
      method: 'PATCH',
      url: `${WEBHOOKS}${id}/`,
      payload: { additional_headers: { 'X-Admin': 'yes' } },
    });
    assert.equal(patch.statusCode, 200, patch.body);
    const row = await webhookRow(id);
    assert.deepEqual(row?.additional_headers, { 'X-Admin': 'yes' });
    assert.equal(row?.username, 'alice', 'an admin edit does not change the owner');
  });
});

describe('hook event routes with an id', () => {
  for (const user of ['alice', 'bob'] as const) {
    const victim = other(user);

    test(`${user} gets 404 on GET of ${victim}'s hook events`, async () => {
      for (const event of owned[victim].events) {
        const res = await ctx.api({ method: 'GET', url: `${EVENTS}${event.id}/`, as: user });
        assert.equal(res.statusCode, 404);
        assert.deepEqual(res.json(), NOT_FOUND);
      }
      for (const event of owned[user].events) {
        const res = await ctx.api({ method: 'GET', url: `${EVENTS}${event.id}/`, as: user });
        assert.equal(res.statusCode, 200);
        assert.equal(res.json().id, event.id);
        assert.equal(res.json().webhook.id, event.webhook);
      }
    });

    test(`${user} gets 404 resending ${victim}'s event; nothing is sent or recorded`, async () => {
      const event = owned[victim].events.find((e) => e.webhook === owned[victim].hooks[1])!;
      const before = await eventRows();
      const sent = ctx.receiver.requests.length;
      for (const uuid of [event.uuid, event.uuid.replaceAll('-', '')]) {
        const res = await ctx.api({
          method: 'POST',
          url: `${EVENTS}resend-event/`,
          as: user,
          payload: { event: uuid, force: true },
        });
        assert.equal(res.statusCode, 404, res.body);
        assert.deepEqual(res.json(), NOT_FOUND);
      }
      assert.equal(ctx.receiver.requests.length, sent, 'no request went out');
      assert.deepEqual(await eventRows(), before);
    });
  }

  test('the owner may resend their own undelivered event', async () => {
    const event = owned.alice.events.find((e) => e.webhook === owned.alice.hooks[1])!;
    const sent = ctx.receiver.requests.length;
    const res = await ctx.api({
      method: 'POST',
      url: `${EVENTS}resend-event/`,
      as: 'alice',
      payload: { event: event.uuid },
    });
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(ctx.receiver.requests.length, sent + 1);
    assert.equal(ctx.receiver.requests.at(-1)!.path, '/alice/fail');
  });
});

describe('lists', () => {
  const ids = (page: Json) => (page.results as Json[]).map((r) => r.id as number).sort();

  for (const user of ['alice', 'bob'] as const) {
    test(`${user}'s webhook list holds only ${user}'s webhooks`, async () => {
      const res = await ctx.api({ method: 'GET', url: WEBHOOKS, as: user });
      assert.equal(res.statusCode, 200);
      const page = res.json();
      assert.equal(page.count, owned[user].hooks.length);
      assert.deepEqual(ids(page), [...owned[user].hooks].sort());
    });

    test(`${user}'s hook event list holds only ${user}'s events`, async () => {
      const res = await ctx.api({ method: 'GET', url: EVENTS, as: user });
      assert.equal(res.statusCode, 200);
      const page = res.json();
      assert.equal(page.count, owned[user].events.length);
      assert.deepEqual(ids(page), owned[user].events.map((e) => e.id).sort());
      for (const event of page.results as Json[]) {
        assert.ok(owned[user].hooks.includes((event.webhook as Json).id as number));
      }
    });

    test(`${user} filtering by ${other(user)}'s webhook or uuid finds nothing`, async () => {
      const theirs = owned[other(user)];
      for (const query of [`webhook=${theirs.hooks[0]}`, `uuid=${theirs.events[0]!.uuid}`]) {
        const res = await ctx.api({ method: 'GET', url: `${EVENTS}?${query}`, as: user });
        assert.equal(res.statusCode, 200, query);
        assert.deepEqual(res.json(), { count: 0, next: null, previous: null, results: [] });
      }
    });

    test(`${user}'s undelivered list holds only ${user}'s failed event`, async () => {
      const res = await ctx.api({ method: 'GET', url: UNDELIVERED, as: user });
      assert.equal(res.statusCode, 200);
      const page = res.json();
      const failed = owned[user].events.filter((e) => e.webhook === owned[user].hooks[1]);
      assert.equal(page.count, 1);
      assert.deepEqual(
        ids(page),
        failed.map((e) => e.id),
      );
      assert.equal(page.results[0].delivered, false);
    });
  }

  test('the admin sees every webhook, event and undelivered event', async () => {
    const hooks = (await ctx.api({ method: 'GET', url: WEBHOOKS })).json();
    assert.equal(hooks.count, 4);
    assert.deepEqual(ids(hooks), [...owned.alice.hooks, ...owned.bob.hooks].sort());
    const events = (await ctx.api({ method: 'GET', url: EVENTS })).json();
    assert.equal(events.count, 4);
    assert.deepEqual(
      ids(events),
      [...owned.alice.events, ...owned.bob.events].map((e) => e.id).sort(),
    );
    const undelivered = (await ctx.api({ method: 'GET', url: UNDELIVERED })).json();
    assert.equal(undelivered.count, 2);
    for (const user of ['alice', 'bob'] as const) {
      const event = owned[user].events[0]!;
      const res = await ctx.api({ method: 'GET', url: `${EVENTS}${event.id}/` });
      assert.equal(res.statusCode, 200);
    }
  });
});

describe('publishing is for admins', () => {
  test('a non-admin publish-event is 403 and queues nothing', async () => {
    const before = await eventRows();
    for (const user of ['alice', 'bob'] as const) {
      const res = await ctx.api({
        method: 'POST',
        url: `${EVENTS}publish-event/`,
        as: user,
        payload: {
          hook: owned[user].hooks[0],
          instance: { pk: 1, model: 'package', data: { a: 1 } },
        },
      });
      assert.equal(res.statusCode, 403, res.body);
      assert.deepEqual(res.json(), FORBIDDEN);
    }
    // Even with the other user's hook id, the answer is 403, not a hint about it.
    const res = await ctx.api({
      method: 'POST',
      url: `${EVENTS}publish-event/`,
      as: 'bob',
      payload: { hook: owned.alice.hooks[0], instance: { pk: 1, model: 'package', data: {} } },
    });
    assert.equal(res.statusCode, 403);
    assert.deepEqual(await eventRows(), before);
  });

  test('a non-admin emit is 403 and queues nothing', async () => {
    const before = await eventRows();
    for (const user of ['alice', 'bob'] as const) {
      const res = await ctx.api({
        method: 'POST',
        url: `${EVENTS}emit/`,
        as: user,
        payload: {
          event_type: 'package.created',
          instance: { pk: 1, model: 'package', data: { a: 1 } },
        },
      });
      assert.equal(res.statusCode, 403, res.body);
      assert.deepEqual(res.json(), FORBIDDEN);
    }
    assert.deepEqual(await eventRows(), before);
  });

  test('the admin may publish to any user’s webhook', async () => {
    const before = (await eventRows()).length;
    assert.equal(await ctx.publish(owned.bob.hooks[0]!), 202);
    assert.equal((await eventRows()).length, before + 1);
  });
});
