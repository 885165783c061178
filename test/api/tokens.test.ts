import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createContext, type Context } from '../helpers/context.js';

const TOKENS = '/api/v1/oms/tokens/';
const WEBHOOKS = '/api/v1/oms/webhooks/';
const TS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;
const FORBIDDEN = { detail: 'You do not have permission to perform this action.' };
const INVALID = { detail: 'Invalid token.' };
const MISSING = { detail: 'Authentication credentials were not provided.' };
const TOKEN_KEYS = [
  'id',
  'user',
  'is_admin',
  'name',
  'key_prefix',
  'created_date',
  'last_used',
  'revoked',
  'scope',
];

type Json = Record<string, unknown>;

let ctx: Context;
/** Every key this file has seen, to check none is stored in clear. */
const keys: string[] = [];
before(async () => {
  ctx = await createContext();
  keys.push(ctx.tokens.admin, ctx.tokens.alice, ctx.tokens.bob);
});
after(() => ctx.close());

const withKey = (key: string, scheme = 'Token') =>
  ctx.app.inject({ method: 'GET', url: WEBHOOKS, headers: { authorization: `${scheme} ${key}` } });

async function issue(payload: Json): Promise<Json> {
  const res = await ctx.api({ method: 'POST', url: TOKENS, payload });
  assert.equal(res.statusCode, 201, res.body);
  const body = res.json() as Json;
  keys.push(body.key as string);
  return body;
}

describe('tokens', () => {
  test('only admins may list, create or revoke (403 for alice)', async () => {
    // last_used moves with every use of a token, so it is left out.
    const snapshot = `select id, user_id, key_hash, key_prefix, name, created_date::text,
      revoked_date::text from api_tokens order by id`;
    const before = await ctx.db.query(snapshot);
    const list = await ctx.api({ method: 'GET', url: TOKENS, as: 'alice' });
    assert.equal(list.statusCode, 403);
    assert.deepEqual(list.json(), FORBIDDEN);
    const create = await ctx.api({
      method: 'POST',
      url: TOKENS,
      as: 'alice',
      payload: { username: 'alice', is_admin: true },
    });
    assert.equal(create.statusCode, 403);
    assert.deepEqual(create.json(), FORBIDDEN);
    const revoke = await ctx.api({ method: 'DELETE', url: `${TOKENS}1/`, as: 'bob' });
    assert.equal(revoke.statusCode, 403);
    assert.deepEqual(revoke.json(), FORBIDDEN);
    const after = await ctx.db.query(snapshot);
    assert.deepEqual(after.rows, before.rows);
    const { rows } = await ctx.db.query<{ is_admin: boolean }>(
      "select is_admin from users where username = 'alice'",
    );
    assert.equal(rows[0]!.is_admin, false, 'alice did not promote herself');
  });

  test('a non-admin gets 403 even for an invalid body', async () => {
    const res = await ctx.api({ method: 'POST', url: TOKENS, as: 'alice', payload: {} });
    assert.equal(res.statusCode, 403, res.body);
    assert.deepEqual(res.json(), FORBIDDEN);
  });

  test('POST creates a user and a token; the 40-hex key is shown once and works', async () => {
    const body = await issue({ username: 'carol', name: 'ci' });
    assert.match(body.key as string, /^[0-9a-f]{40}$/);
    assert.equal(body.user, 'carol');
    assert.equal(body.is_admin, false);
    assert.equal(body.name, 'ci');
    assert.equal(body.revoked, false);
    assert.equal(body.last_used, null);
    assert.equal(body.key_prefix, (body.key as string).slice(0, 8));
    assert.match(body.created_date as string, TS);
    assert.deepEqual(Object.keys(body).sort(), [...TOKEN_KEYS, 'key'].sort());

    const { rows } = await ctx.db.query<{ is_admin: boolean }>(
      "select is_admin from users where username = 'carol'",
    );
    assert.deepEqual(rows, [{ is_admin: false }]);

    const res = await withKey(body.key as string);
    assert.equal(res.statusCode, 200, res.body);
    assert.deepEqual(res.json(), { count: 0, next: null, previous: null, results: [] });

    // carol is no admin: the token list is closed to her.
    const tokens = await ctx.app.inject({
      method: 'GET',
      url: TOKENS,
      headers: { authorization: `Token ${body.key as string}` },
    });
    assert.equal(tokens.statusCode, 403);
  });

  test('is_admin: true makes an admin token', async () => {
    const body = await issue({ username: 'dave', is_admin: true });
    assert.equal(body.is_admin, true);
    const res = await ctx.app.inject({
      method: 'GET',
      url: TOKENS,
      headers: { authorization: `Token ${body.key as string}` },
    });
    assert.equal(res.statusCode, 200);
  });

  test('a second token for an existing user acts as that user', async () => {
    const body = await issue({ username: 'alice' });
    assert.notEqual(body.key, ctx.tokens.alice);
    const created = await ctx.app.inject({
      method: 'POST',
      url: WEBHOOKS,
      headers: { authorization: `Token ${body.key as string}` },
      payload: { target_url: 'https://example.com/', event_type: 'package.created' },
    });
    assert.equal(created.statusCode, 201, created.body);
    const { rows } = await ctx.db.query<{ username: string }>(
      'select u.username from webhooks w join users u on u.id = w.user_id where w.id = $1',
      [created.json().id],
    );
    assert.equal(rows[0]!.username, 'alice');
    const { rows: users } = await ctx.db.query<{ n: number }>(
      "select count(*)::int as n from users where username = 'alice'",
    );
    assert.equal(users[0]!.n, 1);
  });

  test('bad bodies are 400 on the field', async () => {
    for (const [payload, field] of [
      [{}, 'username'],
      [{ username: '' }, 'username'],
      [{ username: 'has space' }, 'username'],
      [{ username: 'ok', is_admin: 'maybe' }, 'is_admin'],
    ] as [Json, string][]) {
      const res = await ctx.api({ method: 'POST', url: TOKENS, payload });
      assert.equal(res.statusCode, 400, JSON.stringify(payload));
      assert.deepEqual(Object.keys(res.json()), [field], JSON.stringify(payload));
    }
  });

  test('the list never contains a key', async () => {
    await issue({ username: 'erin' });
    const res = await ctx.api({ method: 'GET', url: TOKENS });
    assert.equal(res.statusCode, 200);
    const list = res.json() as Json[];
    assert.ok(Array.isArray(list));
    assert.equal(list.length, (await ctx.db.query('select id from api_tokens')).rows.length);
    const text = JSON.stringify(list);
    for (const key of keys) assert.ok(!text.includes(key), 'a key is in the list');
    for (const item of list) {
      assert.deepEqual(Object.keys(item), TOKEN_KEYS);
      assert.ok(!('key' in item));
      assert.equal((item.key_prefix as string).length, 8);
    }
    const users = list.map((t) => t.user);
    for (const name of ['admin', 'alice', 'bob', 'erin']) assert.ok(users.includes(name), name);
  });

  test('api_tokens holds no key in clear', async () => {
    const { rows } = await ctx.db.query<Json>('select * from api_tokens');
    assert.ok(rows.length >= keys.length);
    for (const row of rows) {
      for (const [column, value] of Object.entries(row)) {
        const text = typeof value === 'string' ? value : JSON.stringify(value);
        for (const key of keys) {
          assert.notEqual(text, key, `api_tokens.${column} holds a key`);
          assert.ok(!String(text).includes(key), `api_tokens.${column} contains a key`);
        }
      }
    }
  });

  test('DELETE revokes: 204, the key then gets 401 "Invalid token.", a second DELETE 404', async () => {
    const body = await issue({ username: 'frank' });
    assert.equal((await withKey(body.key as string)).statusCode, 200);

    const res = await ctx.api({ method: 'DELETE', url: `${TOKENS}${body.id as number}/` });
    assert.equal(res.statusCode, 204);
    assert.equal(res.body, '');

    const after = await withKey(body.key as string);
    assert.equal(after.statusCode, 401);
    assert.deepEqual(after.json(), INVALID);
    const bearer = await withKey(body.key as string, 'Bearer');
    assert.equal(bearer.statusCode, 401);

    const { rows } = await ctx.db.query<{ revoked: boolean }>(
      'select revoked_date is not null as revoked from api_tokens where id = $1',
      [body.id],
    );
    assert.deepEqual(rows, [{ revoked: true }]);
    const listed = ((await ctx.api({ method: 'GET', url: TOKENS })).json() as Json[]).find(
      (t) => t.id === body.id,
    );
    assert.equal(listed?.revoked, true);

    const again = await ctx.api({ method: 'DELETE', url: `${TOKENS}${body.id as number}/` });
    assert.equal(again.statusCode, 404);
    assert.deepEqual(again.json(), { detail: 'Not found.' });
    const missing = await ctx.api({ method: 'DELETE', url: `${TOKENS}999999/` });
    assert.equal(missing.statusCode, 404);
  });

  test('revoking one token leaves the user’s other tokens working', async () => {
    const one = await issue({ username: 'gina' });
    const two = await issue({ username: 'gina' });
    const res = await ctx.api({ method: 'DELETE', url: `${TOKENS}${one.id as number}/` });
    assert.equal(res.statusCode, 204);
    assert.equal((await withKey(one.key as string)).statusCode, 401);
    assert.equal((await withKey(two.key as string)).statusCode, 200);
  });

  test('using a token records last_used', async () => {
    const body = await issue({ username: 'hank' });
    assert.equal((await withKey(body.key as string)).statusCode, 200);
    const { rows } = await ctx.db.query<{ used: boolean }>(
      'select last_used is not null as used from api_tokens where id = $1',
      [body.id],
    );
    assert.deepEqual(rows, [{ used: true }]);
  });
});

describe('authentication', () => {
  test('no Authorization header is 401 "Authentication credentials were not provided."', async () => {
    for (const url of [
      WEBHOOKS,
      '/api/v1/oms/oms_hook_events/',
      TOKENS,
      '/api/v1/oms/event_types/',
    ]) {
      const res = await ctx.api({ method: 'GET', url, as: null });
      assert.equal(res.statusCode, 401, url);
      assert.deepEqual(res.json(), MISSING);
      assert.ok(res.headers['www-authenticate'], 'a 401 names the scheme');
    }
  });

  test('a write without credentials is 401 and stores nothing', async () => {
    const before = (await ctx.db.query('select id from webhooks')).rows.length;
    const res = await ctx.api({
      method: 'POST',
      url: WEBHOOKS,
      as: null,
      payload: { target_url: 'https://example.com/', event_type: 'package.created' },
    });
    assert.equal(res.statusCode, 401);
    assert.deepEqual(res.json(), MISSING);
    assert.equal((await ctx.db.query('select id from webhooks')).rows.length, before);
  });

  for (const header of [
    'Token 0000000000000000000000000000000000000000',
    'Token nonsense',
    'Bearer nonsense',
    'Token',
    'Basic YWRtaW46YWRtaW4=',
    'nonsense',
  ]) {
    test(`a bad header ${JSON.stringify(header)} is 401 "Invalid token."`, async () => {
      const res = await ctx.app.inject({
        method: 'GET',
        url: WEBHOOKS,
        headers: { authorization: header },
      });
      assert.equal(res.statusCode, 401);
      assert.deepEqual(res.json(), INVALID);
    });
  }

  test('a key with a character changed is refused', async () => {
    const key = ctx.tokens.alice;
    const changed = key.slice(0, -1) + (key.endsWith('0') ? '1' : '0');
    const res = await withKey(changed);
    assert.equal(res.statusCode, 401);
    assert.deepEqual(res.json(), INVALID);
  });

  test('"Token <key>" and "Bearer <key>" both work', async () => {
    for (const scheme of ['Token', 'Bearer']) {
      const res = await withKey(ctx.tokens.alice, scheme);
      assert.equal(res.statusCode, 200, scheme);
      const body = res.json();
      assert.deepEqual(Object.keys(body), ['count', 'next', 'previous', 'results']);
    }
  });
});
