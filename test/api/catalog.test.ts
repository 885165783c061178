import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createContext, type Context } from '../helpers/context.js';

const EVENT_TYPES = '/api/v1/oms/event_types/';
const CONTENT_TYPES = '/api/v1/oms/content_types/';
const TS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;
const FORBIDDEN = { detail: 'You do not have permission to perform this action.' };

type Json = Record<string, unknown>;

let ctx: Context;
before(async () => {
  ctx = await createContext();
});
after(() => ctx.close());

async function count(sql: string, params: unknown[] = []): Promise<number> {
  const { rows } = await ctx.db.query<{ n: number }>(sql, params);
  return rows[0]!.n;
}

describe('event types', () => {
  test('any user lists them; the seed holds package.created and package.status.shipped', async () => {
    for (const as of ['admin', 'alice', 'bob'] as const) {
      const res = await ctx.api({ method: 'GET', url: EVENT_TYPES, as });
      assert.equal(res.statusCode, 200, as);
      const list = res.json() as Json[];
      assert.ok(Array.isArray(list));
      const names = list.map((e) => e.name);
      assert.ok(names.includes('package.created'));
      assert.ok(names.includes('package.status.shipped'));
      assert.equal(list.length, await count('select count(*)::int as n from event_types'));
      for (const e of list) {
        assert.deepEqual(Object.keys(e), [
          'id',
          'name',
          'description',
          'created_date',
          'modified_date',
        ]);
        assert.match(String(e.created_date), TS);
      }
    }
  });

  test('listing needs a token', async () => {
    const res = await ctx.api({ method: 'GET', url: EVENT_TYPES, as: null });
    assert.equal(res.statusCode, 401);
    assert.deepEqual(res.json(), { detail: 'Authentication credentials were not provided.' });
  });

  test('admin creates one (201); it shows in the list and can be subscribed to', async () => {
    const res = await ctx.api({
      method: 'POST',
      url: EVENT_TYPES,
      payload: { name: 'invoice.paid', description: 'An invoice was paid.' },
    });
    assert.equal(res.statusCode, 201, res.body);
    const body = res.json();
    assert.equal(body.name, 'invoice.paid');
    assert.equal(body.description, 'An invoice was paid.');
    assert.equal(typeof body.id, 'number');
    assert.match(body.created_date, TS);
    assert.equal(
      await count('select count(*)::int as n from event_types where name = $1', ['invoice.paid']),
      1,
    );
    const list = (await ctx.api({ method: 'GET', url: EVENT_TYPES, as: 'alice' })).json() as Json[];
    assert.ok(list.some((e) => e.name === 'invoice.paid'));
    const get = await ctx.api({ method: 'GET', url: `${EVENT_TYPES}${body.id}/`, as: 'bob' });
    assert.equal(get.statusCode, 200);
    assert.deepEqual(get.json(), body);
    const hook = await ctx.api({
      method: 'POST',
      url: '/api/v1/oms/webhooks/',
      as: 'alice',
      payload: { target_url: 'https://example.com/', event_type: 'invoice.paid' },
    });
    assert.equal(hook.statusCode, 201, hook.body);
  });

  test('a non-admin may not create, change or delete (403 {"detail"})', async () => {
    const target = (await ctx.api({ method: 'GET', url: EVENT_TYPES })).json()[0] as Json;
    const before = await ctx.db.query('select * from event_types order by id');

    const post = await ctx.api({
      method: 'POST',
      url: EVENT_TYPES,
      as: 'alice',
      payload: { name: 'alice.made' },
    });
    assert.equal(post.statusCode, 403);
    assert.deepEqual(post.json(), FORBIDDEN);

    const patch = await ctx.api({
      method: 'PATCH',
      url: `${EVENT_TYPES}${target.id}/`,
      as: 'alice',
      payload: { description: 'hijacked' },
    });
    assert.equal(patch.statusCode, 403);
    assert.deepEqual(patch.json(), FORBIDDEN);

    const del = await ctx.api({ method: 'DELETE', url: `${EVENT_TYPES}${target.id}/`, as: 'bob' });
    assert.equal(del.statusCode, 403);
    assert.deepEqual(del.json(), FORBIDDEN);

    const after = await ctx.db.query('select * from event_types order by id');
    assert.deepEqual(after.rows, before.rows);
  });

  test('a non-admin gets 403, not a validation error, for an invalid body', async () => {
    const put = await ctx.api({ method: 'PUT', url: `${CONTENT_TYPES}4/`, as: 'bob', payload: {} });
    assert.equal(put.statusCode, 403, put.body);
    assert.deepEqual(put.json(), FORBIDDEN);
    const res = await ctx.api({
      method: 'POST',
      url: EVENT_TYPES,
      as: 'alice',
      payload: { name: '' },
    });
    assert.equal(res.statusCode, 403, res.body);
    assert.deepEqual(res.json(), FORBIDDEN);
  });

  test('a duplicate name is 400 on name', async () => {
    const before = await count('select count(*)::int as n from event_types');
    const res = await ctx.api({
      method: 'POST',
      url: EVENT_TYPES,
      payload: { name: 'package.created' },
    });
    assert.equal(res.statusCode, 400);
    const body = res.json();
    assert.deepEqual(Object.keys(body), ['name']);
    assert.ok(Array.isArray(body.name) && typeof body.name[0] === 'string');
    assert.equal(await count('select count(*)::int as n from event_types'), before);
  });

  for (const name of ['has space', 'package..created', 'package.*', '*', '.leading', 'x!']) {
    test(`an invalid name ${JSON.stringify(name)} is 400 on name`, async () => {
      const res = await ctx.api({ method: 'POST', url: EVENT_TYPES, payload: { name } });
      assert.equal(res.statusCode, 400, res.body);
      const body = res.json();
      assert.deepEqual(Object.keys(body), ['name']);
      assert.ok(Array.isArray(body.name) && typeof body.name[0] === 'string');
      assert.equal(
        await count('select count(*)::int as n from event_types where name = $1', [name]),
        0,
      );
    });
  }

  test('a missing or empty name is 400 on name', async () => {
    for (const payload of [{}, { name: '' }]) {
      const res = await ctx.api({ method: 'POST', url: EVENT_TYPES, payload });
      assert.equal(res.statusCode, 400);
      assert.deepEqual(Object.keys(res.json()), ['name']);
    }
  });

  test('admin patches the description', async () => {
    const created = (
      await ctx.api({ method: 'POST', url: EVENT_TYPES, payload: { name: 'invoice.voided' } })
    ).json();
    const res = await ctx.api({
      method: 'PATCH',
      url: `${EVENT_TYPES}${created.id}/`,
      payload: { description: 'An invoice was voided.' },
    });
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.json().description, 'An invoice was voided.');
    assert.equal(res.json().name, 'invoice.voided');
    const { rows } = await ctx.db.query<{ description: string }>(
      'select description from event_types where id = $1',
      [created.id],
    );
    assert.equal(rows[0]!.description, 'An invoice was voided.');
  });

  test('admin deletes one: 204, then 404', async () => {
    const created = (
      await ctx.api({ method: 'POST', url: EVENT_TYPES, payload: { name: 'invoice.deleted' } })
    ).json();
    const res = await ctx.api({ method: 'DELETE', url: `${EVENT_TYPES}${created.id}/` });
    assert.equal(res.statusCode, 204);
    assert.equal(res.body, '');
    assert.equal(
      await count('select count(*)::int as n from event_types where id = $1', [created.id]),
      0,
    );
    for (const method of ['GET', 'DELETE'] as const) {
      const again = await ctx.api({ method, url: `${EVENT_TYPES}${created.id}/` });
      assert.equal(again.statusCode, 404, method);
      assert.deepEqual(again.json(), { detail: 'Not found.' });
    }
    const patch = await ctx.api({
      method: 'PATCH',
      url: `${EVENT_TYPES}${created.id}/`,
      payload: { description: 'x' },
    });
    assert.equal(patch.statusCode, 404);
  });
});

describe('content types', () => {
  test('the seed maps order=3, package=4, packageitem=5; any user lists them', async () => {
    for (const as of ['admin', 'alice'] as const) {
      const res = await ctx.api({ method: 'GET', url: CONTENT_TYPES, as });
      assert.equal(res.statusCode, 200);
      const list = res.json() as Json[];
      const byModel = new Map(list.map((c) => [c.model, c.id]));
      assert.equal(byModel.get('order'), 3);
      assert.equal(byModel.get('package'), 4);
      assert.equal(byModel.get('packageitem'), 5);
      for (const c of list) {
        assert.deepEqual(Object.keys(c), [
          'id',
          'model',
          'source_url',
          'source_headers',
          'created_date',
          'modified_date',
        ]);
        assert.match(String(c.modified_date), TS);
      }
      const ids = list.map((c) => c.id as number);
      assert.deepEqual(
        ids,
        [...ids].sort((a, b) => a - b),
        'ordered by id',
      );
    }
  });

  test('admin creates models numbered from 100', async () => {
    const first = await ctx.api({
      method: 'POST',
      url: CONTENT_TYPES,
      payload: {
        model: 'widget',
        source_url: 'https://oms.example.com/api/widgets/{pk}/',
        source_headers: { Authorization: 'Token x' },
      },
    });
    assert.equal(first.statusCode, 201, first.body);
    const a = first.json();
    assert.ok(a.id >= 100, `id ${a.id}`);
    assert.equal(a.model, 'widget');
    assert.equal(a.source_url, 'https://oms.example.com/api/widgets/{pk}/');
    assert.deepEqual(a.source_headers, { Authorization: 'Token x' });
    assert.match(a.created_date, TS);

    const second = await ctx.api({
      method: 'POST',
      url: CONTENT_TYPES,
      payload: { model: 'gadget' },
    });
    assert.equal(second.statusCode, 201, second.body);
    const b = second.json();
    assert.ok(b.id > a.id);
    assert.equal(b.source_url, null);
    assert.deepEqual(b.source_headers, {});

    const { rows } = await ctx.db.query<Json>(
      'select id, model, source_url from content_types where id in ($1, $2) order by id',
      [a.id, b.id],
    );
    assert.deepEqual(rows, [
      { id: a.id, model: 'widget', source_url: 'https://oms.example.com/api/widgets/{pk}/' },
      { id: b.id, model: 'gadget', source_url: null },
    ]);
  });

  test('a duplicate model is 400 on model', async () => {
    const res = await ctx.api({
      method: 'POST',
      url: CONTENT_TYPES,
      payload: { model: 'package' },
    });
    assert.equal(res.statusCode, 400);
    assert.deepEqual(Object.keys(res.json()), ['model']);
  });

  test('an invalid model name is 400 on model', async () => {
    for (const model of ['', 'has space', 'a/b']) {
      const res = await ctx.api({ method: 'POST', url: CONTENT_TYPES, payload: { model } });
      assert.equal(res.statusCode, 400, model);
      assert.deepEqual(Object.keys(res.json()), ['model'], model);
    }
  });

  for (const url of ['ftp://example.com/{pk}', 'not a url', 'javascript:alert(1)']) {
    test(`source_url ${JSON.stringify(url)} is refused`, async () => {
      const res = await ctx.api({
        method: 'POST',
        url: CONTENT_TYPES,
        payload: { model: `m${Math.abs(url.length)}x`, source_url: url },
      });
      assert.equal(res.statusCode, 400, res.body);
      const body = res.json();
      assert.deepEqual(Object.keys(body), ['source_url']);
      assert.ok(Array.isArray(body.source_url) && typeof body.source_url[0] === 'string');
      assert.equal(
        await count('select count(*)::int as n from content_types where source_url = $1', [url]),
        0,
      );
    });
  }

  test('admin replaces one with PUT', async () => {
    const created = (
      await ctx.api({ method: 'POST', url: CONTENT_TYPES, payload: { model: 'crate' } })
    ).json();
    const res = await ctx.api({
      method: 'PUT',
      url: `${CONTENT_TYPES}${created.id}/`,
      payload: { model: 'crate2', source_url: 'http://oms.example.com/crates/{pk}' },
    });
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.json().id, created.id);
    assert.equal(res.json().model, 'crate2');
    assert.equal(res.json().source_url, 'http://oms.example.com/crates/{pk}');
    const { rows } = await ctx.db.query<Json>(
      'select model, source_url from content_types where id = $1',
      [created.id],
    );
    assert.deepEqual(rows[0], {
      model: 'crate2',
      source_url: 'http://oms.example.com/crates/{pk}',
    });

    const bad = await ctx.api({
      method: 'PUT',
      url: `${CONTENT_TYPES}${created.id}/`,
      payload: { model: 'crate2', source_url: 'ftp://x/{pk}' },
    });
    assert.equal(bad.statusCode, 400);
    assert.deepEqual(Object.keys(bad.json()), ['source_url']);

    const missing = await ctx.api({
      method: 'PUT',
      url: `${CONTENT_TYPES}999999/`,
      payload: { model: 'nothing' },
    });
    assert.equal(missing.statusCode, 404);
    assert.deepEqual(missing.json(), { detail: 'Not found.' });
  });

  test('PUT to a model name another content type has is 400 on model, not a 500', async () => {
    const created = (
      await ctx.api({ method: 'POST', url: CONTENT_TYPES, payload: { model: 'pallet' } })
    ).json();
    const res = await ctx.api({
      method: 'PUT',
      url: `${CONTENT_TYPES}${created.id}/`,
      payload: { model: 'package' },
    });
    assert.equal(res.statusCode, 400, res.body);
    assert.deepEqual(Object.keys(res.json()), ['model']);
    const { rows } = await ctx.db.query<{ model: string }>(
      'select model from content_types where id = $1',
      [created.id],
    );
    assert.equal(rows[0]!.model, 'pallet');
    // Keeping its own name is fine.
    const same = await ctx.api({
      method: 'PUT',
      url: `${CONTENT_TYPES}${created.id}/`,
      payload: { model: 'pallet', source_url: 'https://example.com/{pk}' },
    });
    assert.equal(same.statusCode, 200, same.body);
  });

  test('a non-admin may not create, replace or delete (403)', async () => {
    const before = await ctx.db.query('select * from content_types order by id');
    const post = await ctx.api({
      method: 'POST',
      url: CONTENT_TYPES,
      as: 'alice',
      payload: { model: 'alicething' },
    });
    assert.equal(post.statusCode, 403);
    assert.deepEqual(post.json(), FORBIDDEN);
    const put = await ctx.api({
      method: 'PUT',
      url: `${CONTENT_TYPES}4/`,
      as: 'alice',
      payload: { model: 'package', source_url: 'https://evil.example.com/{pk}' },
    });
    assert.equal(put.statusCode, 403);
    assert.deepEqual(put.json(), FORBIDDEN);
    const del = await ctx.api({ method: 'DELETE', url: `${CONTENT_TYPES}5/`, as: 'alice' });
    assert.equal(del.statusCode, 403);
    assert.deepEqual(del.json(), FORBIDDEN);
    const after = await ctx.db.query('select * from content_types order by id');
    assert.deepEqual(after.rows, before.rows);
  });

  test('admin deletes an unused one: 204, then 404', async () => {
    const created = (
      await ctx.api({ method: 'POST', url: CONTENT_TYPES, payload: { model: 'tote' } })
    ).json();
    const res = await ctx.api({ method: 'DELETE', url: `${CONTENT_TYPES}${created.id}/` });
    assert.equal(res.statusCode, 204);
    assert.equal(res.body, '');
    assert.equal(
      await count('select count(*)::int as n from content_types where id = $1', [created.id]),
      0,
    );
    const again = await ctx.api({ method: 'DELETE', url: `${CONTENT_TYPES}${created.id}/` });
    assert.equal(again.statusCode, 404);
    assert.deepEqual(again.json(), { detail: 'Not found.' });
  });

  test('deleting one that hook events use is 400 and keeps it', async () => {
    const created = (
      await ctx.api({ method: 'POST', url: CONTENT_TYPES, payload: { model: 'parcel' } })
    ).json();
    const hook = await ctx.createWebhook();
    const published = await ctx.api({
      method: 'POST',
      url: '/api/v1/oms/oms_hook_events/publish-event/',
      payload: { hook: hook.id, instance: { pk: 9, model: 'parcel', data: { n: 1 } } },
    });
    assert.equal(published.statusCode, 202, published.body);
    assert.equal(
      await count('select count(*)::int as n from hook_events where content_type_id = $1', [
        created.id,
      ]),
      1,
    );

    const res = await ctx.api({ method: 'DELETE', url: `${CONTENT_TYPES}${created.id}/` });
    assert.equal(res.statusCode, 400, res.body);
    const body = res.json() as Json;
    assert.equal(Object.keys(body).length, 1);
    const messages = Object.values(body)[0];
    assert.ok(Array.isArray(messages) && typeof messages[0] === 'string');
    assert.equal(
      await count('select count(*)::int as n from content_types where id = $1', [created.id]),
      1,
    );

    // The seeded package type is in use too once something is published for it.
    assert.equal(await ctx.publish(hook.id as number), 202);
    const pkg = await ctx.api({ method: 'DELETE', url: `${CONTENT_TYPES}4/` });
    assert.equal(pkg.statusCode, 400);
    assert.equal(await count('select count(*)::int as n from content_types where id = 4'), 1);
  });
});
