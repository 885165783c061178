import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { LightMyRequestResponse } from 'fastify';
import { createContext, type Context } from '../helpers/context.js';

const WEBHOOKS = '/api/v1/oms/webhooks/';
const EVENTS = '/api/v1/oms/oms_hook_events/';
const PUBLISH = `${EVENTS}publish-event/`;
const RESEND = `${EVENTS}resend-event/`;
const FORM = 'application/x-www-form-urlencoded';

type Json = Record<string, unknown>;

let ctx: Context;
let hookId: number;
/** Every response this file saw, checked for stack traces at the end. */
const seen: LightMyRequestResponse[] = [];

before(async () => {
  ctx = await createContext();
  hookId = (await ctx.createWebhook()).id as number;
});
after(() => ctx.close());

async function call(options: Parameters<Context['api']>[0]): Promise<LightMyRequestResponse> {
  const res = await ctx.api(options);
  seen.push(res);
  return res;
}

async function eventCount(): Promise<number> {
  const { rows } = await ctx.db.query<{ n: number }>('select count(*)::int as n from hook_events');
  return rows[0]!.n;
}

/** The body is `{"detail": "<string>"}` and nothing else. */
function assertDetail(res: LightMyRequestResponse, status: number): string {
  assert.equal(res.statusCode, status, res.body);
  assert.match(String(res.headers['content-type']), /application\/json/);
  const body = res.json() as Json;
  assert.deepEqual(Object.keys(body), ['detail']);
  assert.equal(typeof body.detail, 'string');
  assert.ok((body.detail as string).length > 0);
  return body.detail as string;
}

describe('request bodies', () => {
  test('malformed JSON is 400 {"detail": "JSON parse error - ..."}', async () => {
    for (const payload of ['{"target_url":', '{bad json}', '[1,2', '{"a": 1,}']) {
      const res = await call({
        method: 'POST',
        url: WEBHOOKS,
        headers: { 'content-type': 'application/json' },
        payload,
      });
      const detail = assertDetail(res, 400);
      assert.ok(detail.startsWith('JSON parse error - '), detail);
    }
  });

  test('an empty JSON body is 400 {"detail": "JSON parse error - ..."}', async () => {
    const res = await call({
      method: 'POST',
      url: WEBHOOKS,
      headers: { 'content-type': 'application/json' },
      payload: '',
    });
    const detail = assertDetail(res, 400);
    assert.ok(detail.startsWith('JSON parse error - '), detail);
  });

  test('a JSON body that is not an object is 400 non_field_errors', async () => {
    const res = await call({
      method: 'POST',
      url: WEBHOOKS,
      headers: { 'content-type': 'application/json' },
      payload: '[1, 2]',
    });
    assert.equal(res.statusCode, 400);
    const body = res.json() as Json;
    assert.deepEqual(Object.keys(body), ['non_field_errors']);
  });

  test('a text/plain body is 415 {"detail"}', async () => {
    const before = (await ctx.db.query('select id from webhooks')).rows.length;
    const res = await call({
      method: 'POST',
      url: WEBHOOKS,
      headers: { 'content-type': 'text/plain' },
      payload: JSON.stringify({
        target_url: 'https://example.com/',
        event_type: 'package.created',
      }),
    });
    const detail = assertDetail(res, 415);
    assert.match(detail, /text\/plain/);
    assert.equal((await ctx.db.query('select id from webhooks')).rows.length, before);
  });

  test('another unsupported media type is 415 naming it', async () => {
    const res = await call({
      method: 'POST',
      url: PUBLISH,
      headers: { 'content-type': 'application/xml' },
      payload: '<hook>1</hook>',
    });
    const detail = assertDetail(res, 415);
    assert.match(detail, /application\/xml/);
  });

  test('a body over the limit is 413 {"detail"}', async () => {
    const small = await createContext({ BODY_LIMIT_BYTES: '1024' });
    try {
      const payload = JSON.stringify({
        target_url: 'https://example.com/',
        event_type: 'package.created',
        secret_key: 'x'.repeat(2048),
      });
      assert.ok(payload.length > 2048);
      const res = await small.api({
        method: 'POST',
        url: WEBHOOKS,
        headers: { 'content-type': 'application/json' },
        payload,
      });
      seen.push(res);
      assertDetail(res, 413);
      const { rows } = await small.db.query<{ n: number }>(
        'select count(*)::int as n from webhooks',
      );
      assert.equal(rows[0]!.n, 0);

      const form = await small.api({
        method: 'POST',
        url: PUBLISH,
        headers: { 'content-type': FORM },
        payload: `hook=1&instance[pk]=1&instance[model]=package&instance[data][a]=${'b'.repeat(2048)}`,
      });
      seen.push(form);
      assertDetail(form, 413);

      // Under the limit the same route works.
      const ok = await small.api({
        method: 'POST',
        url: WEBHOOKS,
        payload: { target_url: 'https://example.com/', event_type: 'package.created' },
      });
      assert.equal(ok.statusCode, 201, ok.body);
    } finally {
      await small.close();
    }
  });
});

describe('routes and methods', () => {
  test('an unknown route is 404 {"detail": "Not found."}', async () => {
    for (const url of ['/nope', '/api/v1/oms/nothing/', `${EVENTS}1/extra/`]) {
      for (const as of ['admin', null] as const) {
        const res = await call({ method: 'GET', url, as });
        assert.equal(res.statusCode, 404, url);
        assert.deepEqual(res.json(), { detail: 'Not found.' });
      }
    }
  });

  test('a wrong method on a known route is 405 {"detail": "Method \\"X\\" not allowed."}', async () => {
    const cases: [string, string][] = [
      ['DELETE', `${EVENTS}1/`],
      ['PUT', PUBLISH],
      ['GET', PUBLISH],
      ['PATCH', EVENTS],
      ['DELETE', WEBHOOKS],
      ['POST', `${WEBHOOKS}${hookId}/`],
    ];
    for (const [method, url] of cases) {
      const res = await call({
        method: method as 'GET',
        url,
        ...(method === 'GET' || method === 'DELETE' ? {} : { payload: {} }),
      });
      assert.equal(res.statusCode, 405, `${method} ${url}: ${res.body}`);
      assert.deepEqual(res.json(), { detail: `Method "${method}" not allowed.` });
      assert.ok(res.headers.allow, `${method} ${url} has an Allow header`);
      assert.ok(!String(res.headers.allow).includes(method));
    }
  });

  test('a non-numeric id is 404, as DRF answers for an object it cannot find', async () => {
    for (const url of [`${WEBHOOKS}abc/`, `${WEBHOOKS}0/`, `${EVENTS}abc/`]) {
      const res = await call({ method: 'GET', url });
      assert.equal(res.statusCode, 404, `${url}: ${res.body}`);
      assert.deepEqual(res.json(), { detail: 'Not found.' });
    }
  });

  test('an id past its column is 404 too, not a server error', async () => {
    // 2^31 and up fit no integer column: PostgreSQL refused such a query, and the API
    // answered 500 (an event's id is a bigint: past what JavaScript holds exactly)
    const big = 2 ** 31;
    for (const [method, url] of [
      ['GET', `${WEBHOOKS}${big}/`],
      ['PATCH', `${WEBHOOKS}${big}/`],
      ['DELETE', `${WEBHOOKS}${big}/`],
      ['POST', `${WEBHOOKS}${big}/rotate-secret/`],
      ['GET', `/api/v1/oms/event_types/${big}/`],
      ['GET', `/api/v1/oms/content_types/${big}/`],
      ['DELETE', `/api/v1/oms/tokens/${big}/`],
      ['GET', `${EVENTS}${2 ** 53}/`],
      ['GET', `${EVENTS}${2 ** 53}/attempts/`],
    ] as const) {
      const res = await call({ method, url, ...(method === 'GET' ? {} : { payload: {} }) });
      assert.equal(res.statusCode, 404, `${method} ${url}: ${res.body}`);
      assert.deepEqual(res.json(), { detail: 'Not found.' });
    }
    const resend = await call({
      method: 'POST',
      url: '/api/v1/oms/oms_hook_events/bulk-resend/',
      payload: { webhook: big },
    });
    assert.equal(resend.statusCode, 400, resend.body);
    assert.deepEqual(Object.keys(resend.json() as Json), ['webhook']);
  });
});

describe('publish-event validation', () => {
  const instance = { pk: 5, model: 'package', data: { a: 'b' } };

  test('hook of the wrong type is 400 {"hook": ["A valid integer is required."]}', async () => {
    const before = await eventCount();
    const res = await call({ method: 'POST', url: PUBLISH, payload: { hook: 'abc', instance } });
    assert.equal(res.statusCode, 400);
    assert.deepEqual(res.json(), { hook: ['A valid integer is required.'] });
    assert.equal(await eventCount(), before);
  });

  test('a missing instance is 400 {"instance": ["This field is required."]}', async () => {
    const res = await call({ method: 'POST', url: PUBLISH, payload: { hook: hookId } });
    assert.equal(res.statusCode, 400);
    assert.deepEqual(res.json(), { instance: ['This field is required.'] });
  });

  test('an empty body names both required fields', async () => {
    const res = await call({ method: 'POST', url: PUBLISH, payload: {} });
    assert.equal(res.statusCode, 400);
    const body = res.json() as Json;
    assert.deepEqual(Object.keys(body).sort(), ['hook', 'instance']);
    assert.deepEqual(body.hook, ['This field is required.']);
    assert.deepEqual(body.instance, ['This field is required.']);
  });

  test('instance fields are reported nested', async () => {
    const res = await call({
      method: 'POST',
      url: PUBLISH,
      payload: { hook: hookId, instance: { data: {} } },
    });
    assert.equal(res.statusCode, 400);
    const body = res.json() as Json;
    assert.deepEqual(Object.keys(body), ['instance']);
    const nested = body.instance as Json;
    assert.deepEqual(nested.model, ['This field is required.']);
    assert.deepEqual(nested.pk, ['This field is required.']);
  });

  test('an unknown hook id is 400 on "hook"', async () => {
    const before = await eventCount();
    // past the column's range too (this was a 500: PostgreSQL refused the query)
    for (const hook of [999999, 2 ** 31, 2 ** 53]) {
      const res = await call({ method: 'POST', url: PUBLISH, payload: { hook, instance } });
      assert.equal(res.statusCode, 400, res.body);
      const body = res.json() as Json;
      assert.deepEqual(Object.keys(body), ['hook']);
      assert.ok(Array.isArray(body.hook) && typeof body.hook[0] === 'string');
    }
    assert.equal(await eventCount(), before);
  });

  test('an unknown model is 400 on instance.model', async () => {
    const res = await call({
      method: 'POST',
      url: PUBLISH,
      payload: { hook: hookId, instance: { pk: 1, model: 'spaceship', data: {} } },
    });
    assert.equal(res.statusCode, 400);
    const body = res.json() as Json;
    assert.deepEqual(Object.keys(body), ['instance']);
    assert.deepEqual(Object.keys(body.instance as Json), ['model']);
    const messages = (body.instance as Json).model;
    assert.ok(Array.isArray(messages) && typeof messages[0] === 'string');
  });

  test('no data and no source_url is 400', async () => {
    const before = await eventCount();
    const res = await call({
      method: 'POST',
      url: PUBLISH,
      payload: { hook: hookId, instance: { pk: 1, model: 'package' } },
    });
    assert.equal(res.statusCode, 400);
    const body = res.json() as Json;
    assert.deepEqual(Object.keys(body), ['instance']);
    assert.equal(await eventCount(), before);
  });

  test('a valid JSON publish is 202 with an empty body and queues one event', async () => {
    const before = await eventCount();
    const res = await call({ method: 'POST', url: PUBLISH, payload: { hook: hookId, instance } });
    assert.equal(res.statusCode, 202, res.body);
    assert.equal(res.body, '');
    assert.equal(await eventCount(), before + 1);
  });
});

describe('form-encoded bodies', () => {
  test('publish-event takes hook=…&instance[pk]=…&instance[model]=…&instance[data][a]=b', async () => {
    const before = await eventCount();
    const res = await call({
      method: 'POST',
      url: PUBLISH,
      headers: { 'content-type': FORM },
      payload: `hook=${hookId}&instance[pk]=5&instance[model]=package&instance[data][a]=b`,
    });
    assert.equal(res.statusCode, 202, res.body);
    assert.equal(res.body, '');
    assert.equal(await eventCount(), before + 1);
    const { rows } = await ctx.db.query<{
      webhook_id: number;
      payload: unknown;
      object_id: unknown;
      content_type_id: number;
    }>(
      `select e.webhook_id, p.request_payload->'payload' as payload, e.object_id, e.content_type_id
       from hook_events e join hook_event_payloads p on p.hook_event_id = e.id
       order by e.id desc limit 1`,
    );
    const row = rows[0]!;
    assert.equal(row.webhook_id, hookId);
    assert.deepEqual(row.payload, { a: 'b' });
    assert.equal(String(row.object_id), '5');
    assert.equal(row.content_type_id, 4);
  });

  test('form publish errors have the same shapes', async () => {
    const res = await call({
      method: 'POST',
      url: PUBLISH,
      headers: { 'content-type': FORM },
      payload: 'hook=abc&instance[pk]=5&instance[model]=package&instance[data][a]=b',
    });
    assert.equal(res.statusCode, 400);
    assert.deepEqual(res.json(), { hook: ['A valid integer is required.'] });
    const missing = await call({
      method: 'POST',
      url: PUBLISH,
      headers: { 'content-type': FORM },
      payload: `hook=${hookId}`,
    });
    assert.equal(missing.statusCode, 400);
    assert.deepEqual(missing.json(), { instance: ['This field is required.'] });
  });

  test('resend-event takes event=<uuid>', async () => {
    const { rows } = await ctx.db.query<{ id: number; uuid: string }>(
      'select id, uuid::text as uuid from hook_events where webhook_id = $1 order by id limit 1',
      [hookId],
    );
    const event = rows[0]!;
    const sent = ctx.receiver.requests.length;
    const res = await call({
      method: 'POST',
      url: RESEND,
      headers: { 'content-type': FORM },
      payload: `event=${event.uuid}`,
    });
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.body, '');
    assert.equal(ctx.receiver.requests.length, sent + 1);
    const { rows: after } = await ctx.db.query<{ delivered: boolean; n: number }>(
      'select delivered, cardinality(request_datetimes)::int as n from hook_events where id = $1',
      [event.id],
    );
    assert.deepEqual(after[0], { delivered: true, n: 1 });
  });

  test('resend-event with a malformed or unknown uuid', async () => {
    const bad = await call({
      method: 'POST',
      url: RESEND,
      headers: { 'content-type': FORM },
      payload: 'event=not-a-uuid',
    });
    assert.equal(bad.statusCode, 400);
    assert.deepEqual(Object.keys(bad.json()), ['event']);
    const unknown = await call({
      method: 'POST',
      url: RESEND,
      payload: { event: '00000000-0000-4000-8000-000000000000' },
    });
    assert.equal(unknown.statusCode, 404);
    assert.deepEqual(unknown.json(), { detail: 'Not found.' });
    const missing = await call({ method: 'POST', url: RESEND, payload: {} });
    assert.equal(missing.statusCode, 400);
    assert.deepEqual(missing.json(), { event: ['This field is required.'] });
  });
});

describe('error bodies', () => {
  test('a 500 says only "A server error occurred."', async () => {
    // Break the table a route reads, so the query fails inside the handler.
    const broken = await createContext();
    try {
      await broken.db.query('alter table event_types rename to event_types_gone');
      const res = await broken.api({ method: 'GET', url: '/api/v1/oms/event_types/' });
      seen.push(res);
      assert.equal(res.statusCode, 500);
      assert.deepEqual(res.json(), { detail: 'A server error occurred.' });
      assert.ok(!res.body.includes('event_types_gone'));
      assert.ok(!res.body.includes('relation'));
    } finally {
      await broken.db.query('alter table event_types_gone rename to event_types');
      await broken.close();
    }
  });

  test('no error body ever contains a stack trace', () => {
    const errors = seen.filter((res) => res.statusCode >= 400);
    assert.ok(errors.length > 20, `only ${errors.length} error responses were seen`);
    for (const res of seen) {
      assert.ok(!res.body.includes('    at '), `a stack trace in ${res.statusCode}: ${res.body}`);
      assert.ok(!/\.ts:\d+/.test(res.body), `a source location in ${res.statusCode}: ${res.body}`);
    }
  });
});
