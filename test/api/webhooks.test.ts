import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createContext, type Context } from '../helpers/context.js';
import { TIMESTAMP, WEBHOOK_KEYS } from './hook-events-shape.js';

const BASE = '/api/v1/oms/webhooks/';
const TS = TIMESTAMP;
const KEYS = WEBHOOK_KEYS;

type Json = Record<string, unknown>;

let ctx: Context;
before(async () => {
  ctx = await createContext();
});
after(() => ctx.close());

const create = (payload: Json, as: 'admin' | 'alice' | 'bob' = 'admin') =>
  ctx.api({
    method: 'POST',
    url: BASE,
    as,
    payload: { target_url: ctx.receiver.url(), event_type: 'package.created', ...payload },
  });

async function rowCount(sql: string, params: unknown[] = []): Promise<number> {
  const { rows } = await ctx.db.query<{ n: number }>(sql, params);
  return rows[0]!.n;
}

/** Posts a webhook and expects 400 with exactly `body`. */
async function rejects(payload: Json, body: Json): Promise<void> {
  const before = await rowCount('select count(*)::int as n from webhooks');
  const res = await create(payload);
  assert.equal(res.statusCode, 400, res.body);
  assert.deepEqual(res.json(), body);
  assert.equal(await rowCount('select count(*)::int as n from webhooks'), before);
}

/** Posts a webhook, expects 400 and returns the error body for field-level checks. */
async function rejected(payload: Json): Promise<Json> {
  const res = await create(payload);
  assert.equal(res.statusCode, 400, res.body);
  return res.json();
}

function assertStringList(value: unknown): void {
  assert.ok(Array.isArray(value), `expected a list of messages, got ${JSON.stringify(value)}`);
  assert.ok(value.length > 0);
  for (const item of value) assert.equal(typeof item, 'string');
}

describe('create', () => {
  test('returns 201 with the seed keys in order and microsecond timestamps', async () => {
    const res = await create({
      secret_key: 's3cret',
      retry_countdown_config: { choice: 'fixed', kwargs: { seconds: 30 } },
      additional_headers: { 'X-Tenant': 'acme' },
      config: { max_retries: 5, timeout: 10 },
      callback: 'https://example.com/cb',
    });
    assert.equal(res.statusCode, 201, res.body);
    assert.match(String(res.headers['content-type']), /application\/json/);
    const body = res.json();
    assert.deepEqual(Object.keys(body), KEYS);
    assert.equal(typeof body.id, 'number');
    assert.match(body.created_date, TS);
    assert.match(body.modified_date, TS);
    assert.deepEqual(body.retry_countdown_config, { choice: 'fixed', kwargs: { seconds: 30 } });
    assert.equal(body.target_url, ctx.receiver.url());
    assert.equal(body.is_active, true);
    assert.equal(body.secret_key, 's3cret');
    assert.equal(body.event_type, 'package.created');
    assert.equal(body.callback, 'https://example.com/cb');
    assert.deepEqual(body.additional_headers, { 'X-Tenant': 'acme' });
    assert.deepEqual(body.config, { max_retries: 5, timeout: 10 });

    const { rows } = await ctx.db.query<Json>(
      'select target_url, secret_key, event_type, is_active, config, retry_countdown_config, u.username from webhooks w join users u on u.id = w.user_id where w.id = $1',
      [body.id],
    );
    assert.equal(rows.length, 1);
    assert.equal(rows[0]!.target_url, ctx.receiver.url());
    assert.equal(rows[0]!.secret_key, 's3cret');
    assert.equal(rows[0]!.username, 'admin');
    assert.deepEqual(rows[0]!.config, { max_retries: 5, timeout: 10 });
  });

  test('defaults: generated whsec_ secret, active, exponential retry, empty headers and config', async () => {
    const res = await create({});
    assert.equal(res.statusCode, 201, res.body);
    const body = res.json();
    assert.deepEqual(Object.keys(body), KEYS);
    assert.match(body.secret_key, /^whsec_[A-Za-z0-9+/=]{16,}$/);
    assert.equal(body.is_active, true);
    assert.equal(body.callback, null);
    assert.deepEqual(body.additional_headers, {});
    assert.deepEqual(body.config, {});
    assert.deepEqual(body.retry_countdown_config, { choice: 'exponential', kwargs: { base: 2 } });
    const other = (await create({})).json();
    assert.notEqual(other.secret_key, body.secret_key, 'each webhook gets its own secret');
    const { rows } = await ctx.db.query<{ secret_key: string }>(
      'select secret_key from webhooks where id = $1',
      [body.id],
    );
    assert.equal(rows[0]!.secret_key, body.secret_key);
  });

  test('missing target_url and event_type are required fields', async () => {
    const res = await ctx.api({ method: 'POST', url: BASE, payload: {} });
    assert.equal(res.statusCode, 400);
    assert.deepEqual(res.json(), {
      target_url: ['This field is required.'],
      event_type: ['This field is required.'],
    });
  });

  test('a webhook is owned by the user who created it', async () => {
    const res = await create({}, 'alice');
    assert.equal(res.statusCode, 201, res.body);
    const { rows } = await ctx.db.query<{ username: string }>(
      'select u.username from webhooks w join users u on u.id = w.user_id where w.id = $1',
      [res.json().id],
    );
    assert.equal(rows[0]!.username, 'alice');
  });
});

describe('target_url validation', () => {
  for (const url of ['ftp://example.com/hook', 'not a url', 'file:///etc/passwd']) {
    test(`refuses ${JSON.stringify(url)}`, async () => {
      const body = await rejected({ target_url: url });
      assert.deepEqual(Object.keys(body), ['target_url']);
      assertStringList(body.target_url);
    });
  }

  test('an empty target_url is refused with a field error', async () => {
    const body = await rejected({ target_url: '' });
    assert.deepEqual(Object.keys(body), ['target_url']);
    assertStringList(body.target_url);
  });

  test('accepts http and https', async () => {
    for (const url of ['http://example.com/hook', 'https://example.com/hook?x=1']) {
      const res = await create({ target_url: url });
      assert.equal(res.statusCode, 201, res.body);
      assert.equal(res.json().target_url, url);
    }
  });

  test('a callback must be http(s) too', async () => {
    const body = await rejected({ callback: 'ftp://example.com/cb' });
    assert.deepEqual(Object.keys(body), ['callback']);
    assertStringList(body.callback);
  });
});

describe('event_type validation', () => {
  test('an unknown event type is refused', async () => {
    const body = await rejected({ event_type: 'nope.never' });
    assert.deepEqual(Object.keys(body), ['event_type']);
    assertStringList(body.event_type);
    assert.match((body.event_type as string[])[0]!, /nope\.never/);
  });

  test('a pattern that matches no registered type is refused', async () => {
    const body = await rejected({ event_type: 'zzz.*' });
    assert.deepEqual(Object.keys(body), ['event_type']);
    assertStringList(body.event_type);
  });

  test('a malformed event type is refused', async () => {
    for (const value of ['package..created', 'package created', 'pack*age']) {
      const body = await rejected({ event_type: value });
      assert.deepEqual(Object.keys(body), ['event_type'], value);
    }
  });

  for (const pattern of ['package.*', '*', 'package.status.*', 'package.status.shipped']) {
    test(`accepts ${JSON.stringify(pattern)}`, async () => {
      const res = await create({ event_type: pattern });
      assert.equal(res.statusCode, 201, res.body);
      assert.equal(res.json().event_type, pattern);
      const { rows } = await ctx.db.query<{ event_type: string }>(
        'select event_type from webhooks where id = $1',
        [res.json().id],
      );
      assert.equal(rows[0]!.event_type, pattern);
    });
  }
});

describe('retry_countdown_config validation', () => {
  const valid: Json[] = [
    { choice: 'fixed', kwargs: { seconds: 60 } },
    { choice: 'linear', kwargs: { base: 10 } },
    { choice: 'linear', kwargs: { base: 10, limit: 600 } },
    { choice: 'exponential', kwargs: { base: 2 } },
    { choice: 'exponential', kwargs: { base: 3, factor: 5, limit: 3600 } },
    { choice: 'random', kwargs: { min_value: 5, max_value: 50 } },
  ];
  for (const config of valid) {
    test(`accepts ${JSON.stringify(config)}`, async () => {
      const res = await create({ retry_countdown_config: config });
      assert.equal(res.statusCode, 201, res.body);
      assert.deepEqual(res.json().retry_countdown_config, config);
      const { rows } = await ctx.db.query<{ retry_countdown_config: Json }>(
        'select retry_countdown_config from webhooks where id = $1',
        [res.json().id],
      );
      assert.deepEqual(rows[0]!.retry_countdown_config, config);
    });
  }

  const invalid: [string, Json, (body: Json) => void][] = [
    [
      'unknown choice',
      { choice: 'fibonacci', kwargs: { base: 1 } },
      (b) => assertStringList((b.retry_countdown_config as Json).choice),
    ],
    [
      'fixed without seconds',
      { choice: 'fixed', kwargs: {} },
      (b) =>
        assert.deepEqual(b, {
          retry_countdown_config: { kwargs: { seconds: ['This field is required.'] } },
        }),
    ],
    [
      'negative base',
      { choice: 'linear', kwargs: { base: -1 } },
      (b) => assertStringList(((b.retry_countdown_config as Json).kwargs as Json).base),
    ],
    [
      'non-integer base',
      { choice: 'exponential', kwargs: { base: 1.5 } },
      (b) => assertStringList(((b.retry_countdown_config as Json).kwargs as Json).base),
    ],
    [
      'string base',
      { choice: 'exponential', kwargs: { base: 'two' } },
      (b) => assertStringList(((b.retry_countdown_config as Json).kwargs as Json).base),
    ],
    [
      'random with min equal to max',
      { choice: 'random', kwargs: { min_value: 10, max_value: 10 } },
      (b) => {
        const kwargs = (b.retry_countdown_config as Json).kwargs as Json;
        assert.ok(kwargs, JSON.stringify(b));
        assertStringList(Object.values(kwargs)[0]);
      },
    ],
    [
      'random with min above max',
      { choice: 'random', kwargs: { min_value: 20, max_value: 10 } },
      (b) => assert.ok((b.retry_countdown_config as Json).kwargs, JSON.stringify(b)),
    ],
    [
      'unknown kwarg',
      { choice: 'fixed', kwargs: { seconds: 5, jitter: 1 } },
      (b) => {
        const kwargs = (b.retry_countdown_config as Json).kwargs as Json;
        assert.deepEqual(Object.keys(kwargs), ['jitter']);
        assertStringList(kwargs.jitter);
      },
    ],
    [
      'not an object',
      'fixed' as unknown as Json,
      (b) => assert.ok(b.retry_countdown_config, JSON.stringify(b)),
    ],
  ];
  for (const [name, config, check] of invalid) {
    test(`rejects ${name}`, async () => {
      const before = await rowCount('select count(*)::int as n from webhooks');
      const body = await rejected({ retry_countdown_config: config });
      assert.deepEqual(Object.keys(body), ['retry_countdown_config']);
      check(body);
      assert.equal(await rowCount('select count(*)::int as n from webhooks'), before);
    });
  }

  test('negative base gives the nested DRF shape', async () => {
    const body = await rejected({
      retry_countdown_config: { choice: 'linear', kwargs: { base: -5 } },
    });
    const base = ((body.retry_countdown_config as Json).kwargs as Json).base;
    assert.deepEqual(Object.keys(body), ['retry_countdown_config']);
    assert.deepEqual(Object.keys(body.retry_countdown_config as Json), ['kwargs']);
    assert.deepEqual(Object.keys((body.retry_countdown_config as Json).kwargs as Json), ['base']);
    assertStringList(base);
  });
});

describe('additional_headers validation', () => {
  for (const name of [
    'Host',
    'Content-Length',
    'Connection',
    'Transfer-Encoding',
    'webhook-signature',
    'X-Whisperer-Signature',
    'content-type',
    'Proxy-Authorization',
  ]) {
    test(`refuses reserved header ${name}`, async () => {
      const body = await rejected({ additional_headers: { [name]: 'x' } });
      assert.deepEqual(Object.keys(body), ['additional_headers']);
      assertStringList(body.additional_headers);
      assert.ok((body.additional_headers as string[])[0]!.includes(name));
    });
  }

  for (const name of ['Bad Header', 'X-Bad:', 'X(y)', 'É-header']) {
    test(`refuses invalid header name ${JSON.stringify(name)}`, async () => {
      const body = await rejected({ additional_headers: { [name]: 'x' } });
      assert.deepEqual(Object.keys(body), ['additional_headers']);
      assertStringList(body.additional_headers);
    });
  }

  for (const value of ['a\r\nX-Injected: 1', 'a\nb', 'a\rb']) {
    test(`refuses a value with a line break ${JSON.stringify(value)}`, async () => {
      const body = await rejected({ additional_headers: { 'X-Ok': value } });
      assert.deepEqual(Object.keys(body), ['additional_headers']);
      assertStringList(body.additional_headers);
    });
  }

  test('a non-string header value is refused', async () => {
    const body = await rejected({ additional_headers: { 'X-Ok': { nested: true } } });
    assert.ok('additional_headers' in body, JSON.stringify(body));
  });

  test('accepts ordinary headers', async () => {
    const res = await create({
      additional_headers: { 'X-Api-Key': 'abc', Authorization: 'Bearer t' },
    });
    assert.equal(res.statusCode, 201, res.body);
    assert.deepEqual(res.json().additional_headers, {
      'X-Api-Key': 'abc',
      Authorization: 'Bearer t',
    });
  });
});

describe('config validation', () => {
  const bad: [string, Json, string][] = [
    ['max_retries 0', { max_retries: 0 }, 'max_retries'],
    ['max_retries 101', { max_retries: 101 }, 'max_retries'],
    ['max_retries 2.5', { max_retries: 2.5 }, 'max_retries'],
    ['max_retries "5"', { max_retries: '5' }, 'max_retries'],
    ['timeout 0', { timeout: 0 }, 'timeout'],
    ['timeout -1', { timeout: -1 }, 'timeout'],
    ['timeout 61', { timeout: 61 }, 'timeout'],
    ['timeout "10"', { timeout: '10' }, 'timeout'],
    ['auth bearer', { auth: { type: 'bearer', token: 't' } }, 'auth'],
    ['auth string', { auth: 'basic' }, 'auth'],
    ['auth basic without username', { auth: { type: 'basic', password: 'p' } }, 'auth'],
  ];
  for (const [name, config, field] of bad) {
    test(`refuses ${name}`, async () => {
      const body = await rejected({ config });
      assert.deepEqual(Object.keys(body), ['config']);
      assert.deepEqual(Object.keys(body.config as Json), [field]);
      assertStringList((body.config as Json)[field]);
    });
  }

  test('accepts the edges of the ranges and basic auth', async () => {
    for (const config of [
      { max_retries: 1, timeout: 60 },
      { max_retries: 100, timeout: 0.5 },
      { auth: { type: 'basic', username: 'u', password: 'p' } },
    ]) {
      const res = await create({ config });
      assert.equal(res.statusCode, 201, res.body);
      // credentials are write-only: the answer masks the password (test/security covers it)
      const shown = config.auth ? { auth: { ...config.auth, password: '********' } } : config;
      assert.deepEqual(res.json().config, shown);
    }
  });
});

describe('errors are reported together', () => {
  test('several bad fields give one 400 naming each', async () => {
    const body = await rejected({
      target_url: 'ftp://x',
      event_type: 'nope.never',
      retry_countdown_config: { choice: 'fixed', kwargs: {} },
      additional_headers: { Host: 'x' },
      config: { max_retries: 0 },
    });
    assert.deepEqual(Object.keys(body).sort(), [
      'additional_headers',
      'config',
      'event_type',
      'retry_countdown_config',
      'target_url',
    ]);
  });

  test('a rejected create leaves no row behind', async () => {
    await rejects(
      { retry_countdown_config: { choice: 'fixed', kwargs: {} } },
      { retry_countdown_config: { kwargs: { seconds: ['This field is required.'] } } },
    );
  });
});

describe('detail, update and delete', () => {
  test('GET /{id}/ returns the webhook in the seed key order', async () => {
    const created = (await create({ secret_key: 'k1' })).json();
    const res = await ctx.api({ method: 'GET', url: `${BASE}${created.id}/` });
    assert.equal(res.statusCode, 200);
    const body = res.json();
    assert.deepEqual(Object.keys(body), KEYS);
    assert.deepEqual(body, created);
  });

  test('GET of a missing id is 404 {"detail": "Not found."}', async () => {
    const res = await ctx.api({ method: 'GET', url: `${BASE}999999/` });
    assert.equal(res.statusCode, 404);
    assert.deepEqual(res.json(), { detail: 'Not found.' });
  });

  test('a non-numeric id is not a webhook', async () => {
    for (const url of [`${BASE}abc/`, `${BASE}0/`, `${BASE}-1/`]) {
      for (const method of ['GET', 'PATCH', 'DELETE'] as const) {
        const res = await ctx.api({
          method,
          url,
          ...(method === 'PATCH' ? { payload: { is_active: false } } : {}),
        });
        assert.equal(res.statusCode, 404, `${method} ${url}: ${res.body}`);
        assert.deepEqual(res.json(), { detail: 'Not found.' });
      }
    }
  });

  test('PUT replaces the fields and moves modified_date, not created_date', async () => {
    const created = (await create({ secret_key: 'old' })).json();
    // Age both timestamps by an hour, so the update is visibly later without waiting.
    const { rows: aged } = await ctx.db.query<{ created: string }>(
      `update webhooks set created_date = created_date - interval '1 hour',
         modified_date = modified_date - interval '1 hour'
       where id = $1 returning oms_ts(created_date) as created`,
      [created.id],
    );
    const createdDate = aged[0]!.created;
    assert.notEqual(createdDate, created.created_date);
    const res = await ctx.api({
      method: 'PUT',
      url: `${BASE}${created.id}/`,
      payload: {
        target_url: 'https://example.com/new',
        event_type: 'package.status.shipped',
        is_active: false,
        secret_key: 'new',
        retry_countdown_config: { choice: 'linear', kwargs: { base: 5, limit: 50 } },
        additional_headers: { 'X-A': 'b' },
        config: { timeout: 5 },
      },
    });
    assert.equal(res.statusCode, 200, res.body);
    const body = res.json();
    assert.deepEqual(Object.keys(body), KEYS);
    assert.equal(body.id, created.id);
    assert.equal(body.target_url, 'https://example.com/new');
    assert.equal(body.event_type, 'package.status.shipped');
    assert.equal(body.is_active, false);
    assert.equal(body.secret_key, 'new');
    assert.deepEqual(body.retry_countdown_config, {
      choice: 'linear',
      kwargs: { base: 5, limit: 50 },
    });
    assert.deepEqual(body.additional_headers, { 'X-A': 'b' });
    assert.deepEqual(body.config, { timeout: 5 });
    assert.equal(body.created_date, createdDate, 'created_date is kept');
    assert.match(body.modified_date, TS);
    assert.ok(body.modified_date > body.created_date, 'modified_date moved');
    const { rows } = await ctx.db.query<Json>(
      'select target_url, is_active, secret_key, event_type, modified_date > created_date as moved from webhooks where id = $1',
      [created.id],
    );
    assert.deepEqual(rows[0], {
      target_url: 'https://example.com/new',
      is_active: false,
      secret_key: 'new',
      event_type: 'package.status.shipped',
      moved: true,
    });
  });

  test('PUT without the required fields is 400 and changes nothing', async () => {
    const created = (await create({})).json();
    const res = await ctx.api({
      method: 'PUT',
      url: `${BASE}${created.id}/`,
      payload: { is_active: false },
    });
    assert.equal(res.statusCode, 400);
    assert.deepEqual(res.json(), {
      target_url: ['This field is required.'],
      event_type: ['This field is required.'],
    });
    const { rows } = await ctx.db.query<{ is_active: boolean }>(
      'select is_active from webhooks where id = $1',
      [created.id],
    );
    assert.equal(rows[0]!.is_active, true);
  });

  test('PATCH changes only the given fields', async () => {
    const created = (
      await create({ secret_key: 'keep', additional_headers: { 'X-Keep': '1' } })
    ).json();
    const res = await ctx.api({
      method: 'PATCH',
      url: `${BASE}${created.id}/`,
      payload: { is_active: false },
    });
    assert.equal(res.statusCode, 200, res.body);
    const body = res.json();
    assert.deepEqual(Object.keys(body), KEYS);
    assert.equal(body.is_active, false);
    assert.equal(body.secret_key, 'keep');
    assert.equal(body.target_url, created.target_url);
    assert.equal(body.event_type, created.event_type);
    assert.deepEqual(body.additional_headers, { 'X-Keep': '1' });
    assert.deepEqual(body.retry_countdown_config, created.retry_countdown_config);
    const { rows } = await ctx.db.query<Json>(
      'select is_active, secret_key from webhooks where id = $1',
      [created.id],
    );
    assert.deepEqual(rows[0], { is_active: false, secret_key: 'keep' });
  });

  test('PATCH validates like create and leaves the row as it was', async () => {
    const created = (await create({})).json();
    const cases: [Json, string][] = [
      [{ target_url: 'ftp://example.com/' }, 'target_url'],
      [{ event_type: 'nope.never' }, 'event_type'],
      [
        { retry_countdown_config: { choice: 'random', kwargs: { min_value: 3, max_value: 1 } } },
        'retry_countdown_config',
      ],
      [{ additional_headers: { Connection: 'close' } }, 'additional_headers'],
      [{ config: { max_retries: 1000 } }, 'config'],
    ];
    for (const [payload, field] of cases) {
      const res = await ctx.api({ method: 'PATCH', url: `${BASE}${created.id}/`, payload });
      assert.equal(res.statusCode, 400, `${JSON.stringify(payload)}: ${res.body}`);
      assert.deepEqual(Object.keys(res.json()), [field]);
    }
    const res = await ctx.api({ method: 'GET', url: `${BASE}${created.id}/` });
    assert.deepEqual(res.json(), created);
  });

  test('PATCH of a missing id is 404', async () => {
    const res = await ctx.api({
      method: 'PATCH',
      url: `${BASE}999999/`,
      payload: { is_active: false },
    });
    assert.equal(res.statusCode, 404);
    assert.deepEqual(res.json(), { detail: 'Not found.' });
  });

  test('DELETE is 204 with no body, then 404; its events are deleted too', async () => {
    const hook = await ctx.createWebhook();
    const keep = await ctx.createWebhook();
    assert.equal(await ctx.publish(hook.id as number), 202);
    assert.equal(await ctx.publish(hook.id as number), 202);
    assert.equal(await ctx.publish(keep.id as number), 202);
    const events = (id: unknown) =>
      rowCount('select count(*)::int as n from hook_events where webhook_id = $1', [id]);
    const queued = (id: unknown) =>
      rowCount(
        'select count(*)::int as n from hook_event_queue q join hook_events e on e.id = q.hook_event_id where e.webhook_id = $1',
        [id],
      );
    assert.equal(await events(hook.id), 2);
    assert.equal(await queued(hook.id), 2);

    const res = await ctx.api({ method: 'DELETE', url: `${BASE}${hook.id}/` });
    assert.equal(res.statusCode, 204);
    assert.equal(res.body, '');
    assert.equal(await events(hook.id), 0);
    assert.equal(
      await rowCount('select count(*)::int as n from hook_event_queue where webhook_id = $1', [
        hook.id,
      ]),
      0,
    );
    assert.equal(
      await rowCount('select count(*)::int as n from webhooks where id = $1', [hook.id]),
      0,
    );
    assert.equal(await events(keep.id), 1, 'other webhooks keep their events');

    const again = await ctx.api({ method: 'DELETE', url: `${BASE}${hook.id}/` });
    assert.equal(again.statusCode, 404);
    assert.deepEqual(again.json(), { detail: 'Not found.' });
    const get = await ctx.api({ method: 'GET', url: `${BASE}${hook.id}/` });
    assert.equal(get.statusCode, 404);
    assert.deepEqual(get.json(), { detail: 'Not found.' });
  });
});

describe('list', () => {
  test('is paginated as {count, next, previous, results}', async () => {
    // Bob owns nothing else in this file, so his list is exactly these three.
    const ids: number[] = [];
    for (let i = 0; i < 3; i++) ids.push((await create({ secret_key: `b${i}` }, 'bob')).json().id);

    const first = await ctx.api({ method: 'GET', url: `${BASE}?page_size=2`, as: 'bob' });
    assert.equal(first.statusCode, 200);
    const p1 = first.json();
    assert.deepEqual(Object.keys(p1), ['count', 'next', 'previous', 'results']);
    assert.equal(p1.count, 3);
    assert.equal(p1.previous, null);
    assert.deepEqual(
      p1.results.map((w: Json) => w.id),
      ids.slice(0, 2),
    );
    for (const w of p1.results) assert.deepEqual(Object.keys(w), KEYS);
    const next = new URL(p1.next);
    assert.equal(next.pathname, BASE);
    assert.equal(next.searchParams.get('page'), '2');
    assert.equal(next.searchParams.get('page_size'), '2');

    const second = await ctx.api({
      method: 'GET',
      url: `${next.pathname}${next.search}`,
      as: 'bob',
    });
    assert.equal(second.statusCode, 200);
    const p2 = second.json();
    assert.equal(p2.count, 3);
    assert.equal(p2.next, null);
    assert.deepEqual(
      p2.results.map((w: Json) => w.id),
      ids.slice(2),
    );
    const previous = new URL(p2.previous);
    assert.equal(previous.searchParams.get('page'), null, 'the first page drops ?page');
    assert.equal(previous.searchParams.get('page_size'), '2');

    const past = await ctx.api({ method: 'GET', url: `${BASE}?page=3&page_size=2`, as: 'bob' });
    assert.equal(past.statusCode, 404);
    assert.deepEqual(past.json(), { detail: 'Invalid page.' });
  });

  test('an empty list is count 0 with no links', async () => {
    const fresh = await createContext();
    try {
      const res = await fresh.api({ method: 'GET', url: BASE });
      assert.equal(res.statusCode, 200);
      assert.deepEqual(res.json(), { count: 0, next: null, previous: null, results: [] });
    } finally {
      await fresh.close();
    }
  });

  test('admin list counts every webhook in the database', async () => {
    const res = await ctx.api({ method: 'GET', url: `${BASE}?page_size=1000` });
    assert.equal(res.statusCode, 200);
    const body = res.json();
    const total = await rowCount('select count(*)::int as n from webhooks');
    assert.equal(body.count, total);
    assert.equal(body.results.length, total);
  });

  test('bad paging parameters are 400 on the parameter', async () => {
    for (const [query, field] of [
      ['page=0', 'page'],
      ['page=abc', 'page'],
      ['page_size=0', 'page_size'],
    ]) {
      const res = await ctx.api({ method: 'GET', url: `${BASE}?${query}` });
      assert.equal(res.statusCode, 400, query);
      assert.deepEqual(Object.keys(res.json()), [field], query);
    }
  });
});

describe('private targets', () => {
  let strict: Context;
  before(async () => {
    strict = await createContext({ ALLOW_PRIVATE_TARGETS: '0' });
  });
  after(() => strict.close());

  for (const url of [
    'http://127.0.0.1/',
    'http://localhost/',
    'http://10.0.0.1/',
    'http://169.254.169.254/',
    'http://192.168.1.1/',
    'http://[::1]/',
    'http://0.0.0.0/',
  ]) {
    test(`refuses ${url}`, async () => {
      const res = await strict.api({
        method: 'POST',
        url: BASE,
        payload: { target_url: url, event_type: 'package.created' },
      });
      assert.equal(res.statusCode, 400, res.body);
      const body = res.json();
      assert.deepEqual(Object.keys(body), ['target_url']);
      assertStringList(body.target_url);
      const { rows } = await strict.db.query<{ n: number }>(
        'select count(*)::int as n from webhooks where target_url = $1',
        [url],
      );
      assert.equal(rows[0]!.n, 0);
    });
  }

  test('accepts https://example.com/', async () => {
    const res = await strict.api({
      method: 'POST',
      url: BASE,
      payload: { target_url: 'https://example.com/', event_type: 'package.created' },
    });
    assert.equal(res.statusCode, 201, res.body);
    assert.equal(res.json().target_url, 'https://example.com/');
  });

  test('PATCH to a private target is refused too', async () => {
    const created = await strict.api({
      method: 'POST',
      url: BASE,
      payload: { target_url: 'https://example.com/a', event_type: 'package.created' },
    });
    const id = created.json().id;
    const res = await strict.api({
      method: 'PATCH',
      url: `${BASE}${id}/`,
      payload: { target_url: 'http://169.254.169.254/latest/meta-data/' },
    });
    assert.equal(res.statusCode, 400);
    assert.deepEqual(Object.keys(res.json()), ['target_url']);
    const { rows } = await strict.db.query<{ target_url: string }>(
      'select target_url from webhooks where id = $1',
      [id],
    );
    assert.equal(rows[0]!.target_url, 'https://example.com/a');
  });
});
