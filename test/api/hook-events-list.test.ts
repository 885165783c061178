import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createContext, type Context } from '../helpers/context.js';
import {
  assertHookEventShape,
  assertPageShape,
  HOOK_EVENT_KEYS,
  PAGE_KEYS,
  seedExamples,
  WEBHOOK_KEYS,
} from './hook-events-shape.js';

/**
 * The read side of /api/v1/oms/oms_hook_events/: shape, detail, filters, ordering and
 * per-user scoping, over one data set built in before() through the real API, worker and
 * receiver. Tests here only read, so their order does not matter.
 */
const LIST = '/api/v1/oms/oms_hook_events/';
type Json = Record<string, unknown>;
type Key = 'e1' | 'e2' | 'e3' | 'e4' | 'e5';

const at = (time: string) => Date.parse(`2026-01-15T${time}Z`);
const ts = (time: string) => `2026-01-15T${time}Z`;

let ctx: Context;
let hookA: Json; // admin, package.created
let hookB: Json; // admin, order.created
let hookC: Json; // alice, package.created
/** The events by the `key` each carries in its payload. */
const ev = {} as Record<Key, Json>;

async function get(url: string, as: 'admin' | 'alice' | 'bob' = 'admin') {
  return ctx.api({ method: 'GET', url, as });
}

async function listKeys(query: string, as: 'admin' | 'alice' | 'bob' = 'admin'): Promise<Key[]> {
  const res = await get(`${LIST}?page_size=100${query ? `&${query}` : ''}`, as);
  assert.equal(res.statusCode, 200, res.body);
  const body = res.json() as { count: number; results: Json[] };
  assert.equal(body.count, body.results.length);
  return body.results.map((e) => (e.request_payload as { payload: { key: Key } }).payload.key);
}

async function publish(hook: Json, data: Json, instance: Json = { pk: 1, model: 'package' }) {
  const status = await ctx.publish(hook.id as number, data, { instance: { ...instance, data } });
  assert.equal(status, 202);
}

before(async () => {
  ctx = await createContext();
  // The receiver answers with the status and body the event's payload asks for.
  ctx.receiver.respond((req) => {
    const { payload } = JSON.parse(req.body) as { payload: { status?: number; reply?: string } };
    return { status: payload.status ?? 200, body: payload.reply ?? 'ok' };
  });
  hookA = await ctx.createWebhook({ event_type: 'package.created' });
  hookB = await ctx.createWebhook({ event_type: 'order.created' });
  hookC = await ctx.createWebhook({ event_type: 'package.created' }, 'alice');

  ctx.clock.set(at('10:00:00.000'));
  await publish(hookA, { key: 'e1', status: 200, reply: 'ok-e1' }, { pk: 1, model: 'package' });
  ctx.clock.set(at('10:01:00.000') + 0.123); // microseconds survive to the API
  await publish(
    hookA,
    { key: 'e2', status: 500, reply: 'boom-e2' },
    { pk: 'PKG-7', model: 'package' },
  );
  ctx.clock.set(at('10:02:00.000'));
  await publish(hookB, { key: 'e3', status: 200, reply: 'ok-e3' }, { pk: 2, model: 'order' });
  ctx.clock.set(at('10:03:00.000'));
  await publish(hookC, { key: 'e4', status: 500, reply: 'boom-e4' }, { pk: 3, model: 'package' });

  assert.equal(await ctx.worker.runOnce(), 4); // e1, e3 delivered; e2, e4 fail
  ctx.clock.set(at('10:03:02.000')); // exponential base 2: first retry after 2 s
  assert.equal(await ctx.worker.runOnce(), 2);
  ctx.clock.set(at('10:03:06.000')); // then after 4 s
  assert.equal(await ctx.worker.runOnce(), 2);

  ctx.clock.set(at('10:05:00.000'));
  await publish(hookA, { key: 'e5' }, { pk: 5, model: 'package' }); // never attempted

  const res = await get(`${LIST}?page_size=100`);
  for (const e of (res.json() as { results: Json[] }).results) {
    ev[(e.request_payload as { payload: { key: Key } }).payload.key] = e;
  }
  assert.deepEqual(Object.keys(ev).sort(), ['e1', 'e2', 'e3', 'e4', 'e5']);
});

after(() => ctx.close());

describe('response shape', () => {
  test('the key lists used here are the seed examples’ keys, in order', (t) => {
    const seed = seedExamples();
    if (!seed) return t.skip('seed files not present');
    for (const body of [seed.list, seed.undelivered]) {
      assert.deepEqual(Object.keys(body), PAGE_KEYS);
      const item = (body.results as Json[])[0]!;
      assert.deepEqual(Object.keys(item), HOOK_EVENT_KEYS);
      assert.deepEqual(Object.keys(item.webhook as Json), WEBHOOK_KEYS);
      assert.deepEqual(Object.keys(item.request_payload as Json), ['event', 'payload']);
      assert.deepEqual(Object.keys((item.request_payload as Json).event as Json), ['type', 'uuid']);
    }
    assert.deepEqual(Object.keys(seed.detail), HOOK_EVENT_KEYS);
    assert.deepEqual(Object.keys(seed.detail.webhook as Json), WEBHOOK_KEYS);
  });

  test('the list body and every event have exactly the documented keys and types', async () => {
    const res = await get(LIST);
    assert.equal(res.statusCode, 200);
    assert.match(String(res.headers['content-type']), /^application\/json/);
    const body = res.json() as Json;
    assert.deepEqual(Object.keys(body), ['count', 'next', 'previous', 'results']);
    assertPageShape(body);
    assert.equal(body.count, 5);
    assert.equal(body.next, null);
    assert.equal(body.previous, null);
    for (const e of body.results as Json[]) {
      assert.deepEqual(Object.keys(e), HOOK_EVENT_KEYS);
      assert.deepEqual(Object.keys(e.webhook as Json), WEBHOOK_KEYS);
    }
  });

  test('timestamps are the clock times, in UTC with six fractional digits', () => {
    assert.equal(ev.e1.created_date, ts('10:00:00.000000'));
    assert.equal(ev.e2.created_date, ts('10:01:00.000123'));
    assert.equal(ev.e3.created_date, ts('10:02:00.000000'));
    assert.equal(ev.e4.created_date, ts('10:03:00.000000'));
    assert.equal(ev.e5.created_date, ts('10:05:00.000000'));
    // modified_date moves with each recorded attempt
    assert.equal(ev.e1.modified_date, ts('10:03:00.000000'));
    assert.equal(ev.e2.modified_date, ts('10:03:06.000000'));
    assert.equal(ev.e5.modified_date, ts('10:05:00.000000'));
  });

  test('request_datetimes is newest first; retry_count counts the attempts', () => {
    assert.deepEqual(ev.e2.request_datetimes, [
      ts('10:03:06.000000'),
      ts('10:03:02.000000'),
      ts('10:03:00.000000'),
    ]);
    assert.equal(ev.e2.retry_count, 3);
    assert.deepEqual(ev.e4.request_datetimes, ev.e2.request_datetimes);
    assert.deepEqual(ev.e1.request_datetimes, [ts('10:03:00.000000')]);
    assert.equal(ev.e1.retry_count, 1);
  });

  test('an event never attempted has retry_count null and no attempt data', () => {
    assert.equal(ev.e5.retry_count, null);
    assert.deepEqual(ev.e5.request_datetimes, []);
    assert.equal(ev.e5.delivered, false);
    assert.equal(ev.e5.response_http_status, null);
    assert.equal(ev.e5.response_content, null);
  });

  test('attempt outcomes: status, delivered and the receiver’s body text', () => {
    assert.equal(ev.e1.delivered, true);
    assert.equal(ev.e1.response_http_status, 200);
    assert.equal(ev.e1.response_content, 'ok-e1');
    assert.equal(ev.e2.delivered, false);
    assert.equal(ev.e2.response_http_status, 500);
    assert.equal(ev.e2.response_content, 'boom-e2');
  });

  test('request_payload carries the event type, the bare-hex uuid and the payload', () => {
    for (const key of ['e1', 'e2', 'e3', 'e4', 'e5'] as const) {
      const e = ev[key];
      const payload = e.request_payload as { event: Json; payload: Json };
      assert.equal(payload.event.uuid, (e.uuid as string).replaceAll('-', ''));
      assert.match(payload.event.uuid as string, /^[0-9a-f]{32}$/);
      assert.equal(payload.event.type, (e.webhook as Json).event_type);
      assert.equal(payload.payload.key, key);
    }
    assert.equal((ev.e3.request_payload as { event: Json }).event.type, 'order.created');
    assert.deepEqual((ev.e2.request_payload as Json).payload, {
      key: 'e2',
      status: 500,
      reply: 'boom-e2',
    });
  });

  test('object_id keeps the published type; content_type is the model’s integer', () => {
    assert.strictEqual(ev.e1.object_id, 1);
    assert.strictEqual(ev.e2.object_id, 'PKG-7');
    assert.strictEqual(ev.e3.object_id, 2);
    assert.strictEqual(ev.e1.content_type, 4); // package
    assert.strictEqual(ev.e2.content_type, 4);
    assert.strictEqual(ev.e3.content_type, 3); // order
  });

  test('the nested webhook is the webhook as its own endpoint shows it', async () => {
    for (const [e, hook] of [
      [ev.e1, hookA],
      [ev.e3, hookB],
      [ev.e4, hookC],
    ] as const) {
      const res = await get(`/api/v1/oms/webhooks/${hook.id as number}/`);
      assert.equal(res.statusCode, 200);
      assert.deepEqual(e.webhook, res.json());
      assert.deepEqual(e.webhook, hook);
    }
  });

  test('every event agrees with its row in the database', async () => {
    const { rows } = await ctx.db.query<{
      id: number;
      uuid: string;
      webhook_id: number;
      retry_count: number | null;
      delivered: boolean;
      response_http_status: number | null;
      response_content: string | null;
      content_type_id: number | null;
      n_attempts: number;
    }>(
      `select id, uuid::text as uuid, webhook_id, retry_count, delivered, response_http_status,
              response_content, content_type_id, cardinality(request_datetimes) as n_attempts
       from hook_events order by id`,
    );
    assert.equal(rows.length, 5);
    for (const row of rows) {
      const e = Object.values(ev).find((x) => x.id === row.id);
      assert.ok(e, `event ${row.id} is listed`);
      assert.equal(e.uuid, row.uuid);
      assert.equal((e.webhook as Json).id, row.webhook_id);
      assert.equal(e.retry_count, row.retry_count);
      assert.equal(e.delivered, row.delivered);
      assert.equal(e.response_http_status, row.response_http_status);
      assert.equal(e.response_content, row.response_content);
      assert.equal(e.content_type, row.content_type_id);
      assert.equal((e.request_datetimes as string[]).length, row.n_attempts);
    }
  });

  test('what the receiver got matches the listed events', () => {
    const byUuid = new Map<string, number>();
    for (const req of ctx.receiver.requests) {
      const body = JSON.parse(req.body) as { event: { uuid: string } };
      byUuid.set(body.event.uuid, (byUuid.get(body.event.uuid) ?? 0) + 1);
    }
    for (const e of Object.values(ev)) {
      const hex = (e.uuid as string).replaceAll('-', '');
      assert.equal(byUuid.get(hex) ?? 0, e.retry_count ?? 0, `attempts of ${e.uuid as string}`);
    }
    const first = ctx.receiver.requests.find(
      (r) => (JSON.parse(r.body) as { event: { uuid: string } }).event.uuid.length === 32,
    )!;
    const sent = JSON.parse(first.body) as { event: { uuid: string } };
    const listed = Object.values(ev).find(
      (e) => (e.request_payload as { event: { uuid: string } }).event.uuid === sent.event.uuid,
    )!;
    assert.deepEqual(sent, listed.request_payload);
  });
});

describe('detail', () => {
  test('GET {pk}/ equals the matching list entry', async () => {
    for (const e of Object.values(ev)) {
      const res = await get(`${LIST}${e.id as number}/`);
      assert.equal(res.statusCode, 200);
      const body = res.json() as Json;
      assert.deepEqual(Object.keys(body), HOOK_EVENT_KEYS);
      assertHookEventShape(body);
      assert.deepEqual(body, e);
    }
  });

  test('an unknown pk is 404 {"detail": "Not found."}', async () => {
    const max = Math.max(...Object.values(ev).map((e) => e.id as number));
    const res = await get(`${LIST}${max + 1000}/`);
    assert.equal(res.statusCode, 404);
    assert.deepEqual(res.json(), { detail: 'Not found.' });
  });
});

describe('filters', () => {
  test('no filter: newest first (id descending)', async () => {
    assert.deepEqual(await listKeys(''), ['e5', 'e4', 'e3', 'e2', 'e1']);
  });

  test('delivered=true / false', async () => {
    assert.deepEqual(await listKeys('delivered=true'), ['e3', 'e1']);
    assert.deepEqual(await listKeys('delivered=false'), ['e5', 'e4', 'e2']);
    assert.deepEqual(await listKeys('delivered=True'), ['e3', 'e1']);
    assert.deepEqual(await listKeys('delivered=False'), ['e5', 'e4', 'e2']);
  });

  test('webhook', async () => {
    assert.deepEqual(await listKeys(`webhook=${hookA.id as number}`), ['e5', 'e2', 'e1']);
    assert.deepEqual(await listKeys(`webhook=${hookB.id as number}`), ['e3']);
    assert.deepEqual(await listKeys(`webhook=${hookC.id as number}`), ['e4']);
  });

  test('event_type', async () => {
    assert.deepEqual(await listKeys('event_type=order.created'), ['e3']);
    assert.deepEqual(await listKeys('event_type=package.created'), ['e5', 'e4', 'e2', 'e1']);
    assert.deepEqual(await listKeys('event_type=package.updated'), []);
  });

  test('object_id, integer and string pks', async () => {
    assert.deepEqual(await listKeys('object_id=1'), ['e1']);
    assert.deepEqual(await listKeys('object_id=PKG-7'), ['e2']);
    assert.deepEqual(await listKeys('object_id=3'), ['e4']);
    assert.deepEqual(await listKeys('object_id=404'), []);
  });

  test('content_type', async () => {
    assert.deepEqual(await listKeys('content_type=3'), ['e3']);
    assert.deepEqual(await listKeys('content_type=4'), ['e5', 'e4', 'e2', 'e1']);
    assert.deepEqual(await listKeys('content_type=5'), []);
  });

  test('uuid, dashed or bare hex, any case', async () => {
    const uuid = ev.e2.uuid as string;
    assert.deepEqual(await listKeys(`uuid=${uuid}`), ['e2']);
    assert.deepEqual(await listKeys(`uuid=${uuid.replaceAll('-', '')}`), ['e2']);
    assert.deepEqual(await listKeys(`uuid=${uuid.toUpperCase()}`), ['e2']);
    assert.deepEqual(await listKeys('uuid=00000000-0000-4000-8000-000000000000'), []);
  });

  test('response_http_status', async () => {
    assert.deepEqual(await listKeys('response_http_status=500'), ['e4', 'e2']);
    assert.deepEqual(await listKeys('response_http_status=200'), ['e3', 'e1']);
    assert.deepEqual(await listKeys('response_http_status=404'), []);
  });

  test('created_date__gte / __lte are inclusive', async () => {
    assert.deepEqual(await listKeys('created_date__gte=2026-01-15T10:02:00Z'), ['e5', 'e4', 'e3']);
    assert.deepEqual(await listKeys('created_date__lte=2026-01-15T10:02:00Z'), ['e3', 'e2', 'e1']);
    assert.deepEqual(
      await listKeys(
        'created_date__gte=2026-01-15T10:01:00Z&created_date__lte=2026-01-15T10:03:00Z',
      ),
      ['e4', 'e3', 'e2'],
    );
    // microseconds count: e2 was created at 10:01:00.000123
    assert.deepEqual(await listKeys('created_date__gte=2026-01-15T10:01:00.000124Z'), [
      'e5',
      'e4',
      'e3',
    ]);
    assert.deepEqual(await listKeys('created_date__lte=2026-01-15T10:01:00.000123Z'), ['e2', 'e1']);
    // an offset is honoured: 11:02+01:00 is 10:02Z
    assert.deepEqual(await listKeys('created_date__gte=2026-01-15T11:02:00%2B01:00'), [
      'e5',
      'e4',
      'e3',
    ]);
    assert.deepEqual(await listKeys('created_date__gte=2026-01-16'), []);
    assert.deepEqual(await listKeys('created_date__lte=2026-01-14'), []);
    assert.equal((await listKeys('created_date__gte=2026-01-15')).length, 5);
  });

  test('modified_date__gte / __lte follow the last attempt', async () => {
    assert.deepEqual(await listKeys('modified_date__gte=2026-01-15T10:03:06Z'), ['e5', 'e4', 'e2']);
    assert.deepEqual(await listKeys('modified_date__lte=2026-01-15T10:03:00Z'), ['e3', 'e1']);
    assert.deepEqual(
      await listKeys(
        'modified_date__gte=2026-01-15T10:03:01Z&modified_date__lte=2026-01-15T10:04:00Z',
      ),
      ['e4', 'e2'],
    );
  });

  test('filters combine with AND', async () => {
    assert.deepEqual(await listKeys(`delivered=false&webhook=${hookA.id as number}`), ['e5', 'e2']);
    assert.deepEqual(await listKeys('content_type=4&response_http_status=200'), ['e1']);
    assert.deepEqual(await listKeys('event_type=order.created&delivered=false'), []);
  });

  test('a filtered list counts only the matches and links keep the filter', async () => {
    const res = await get(`${LIST}?delivered=false&page_size=2`);
    const body = res.json() as Json;
    assert.equal(body.count, 3);
    assert.equal((body.results as Json[]).length, 2);
    const next = new URL(body.next as string);
    assert.equal(next.searchParams.get('delivered'), 'false');
    assert.equal(next.searchParams.get('page'), '2');
    const page2 = (await get(next.pathname + next.search)).json() as Json;
    assert.deepEqual(
      (page2.results as Json[]).map((e) => e.id),
      [ev.e2.id],
    );
  });
});

describe('ordering', () => {
  test('ordering=id is oldest first', async () => {
    assert.deepEqual(await listKeys('ordering=id'), ['e1', 'e2', 'e3', 'e4', 'e5']);
    assert.deepEqual(await listKeys('ordering=-id'), ['e5', 'e4', 'e3', 'e2', 'e1']);
  });

  test('ordering=-created_date / created_date', async () => {
    assert.deepEqual(await listKeys('ordering=-created_date'), ['e5', 'e4', 'e3', 'e2', 'e1']);
    assert.deepEqual(await listKeys('ordering=created_date'), ['e1', 'e2', 'e3', 'e4', 'e5']);
  });

  test('ordering=-modified_date puts the latest attempt first', async () => {
    const keys = await listKeys('ordering=-modified_date');
    assert.equal(keys[0], 'e5');
    assert.deepEqual(keys.slice(1, 3).sort(), ['e2', 'e4']);
    assert.deepEqual(keys.slice(3).sort(), ['e1', 'e3']);
  });

  test('ordering=retry_count: fewest attempts first, never attempted last', async () => {
    const keys = await listKeys('ordering=retry_count');
    assert.deepEqual(keys.slice(0, 2).sort(), ['e1', 'e3']);
    assert.deepEqual(keys.slice(2, 4).sort(), ['e2', 'e4']);
    assert.equal(keys[4], 'e5');
  });

  test('ordering combines with filters', async () => {
    assert.deepEqual(await listKeys('delivered=false&ordering=id'), ['e2', 'e4', 'e5']);
  });
});

describe('bad filter values', () => {
  const cases: [string, string][] = [
    ['delivered=maybe', 'delivered'],
    ['uuid=nope', 'uuid'],
    ['created_date__gte=yesterday', 'created_date__gte'],
    ['created_date__lte=2026-13-45', 'created_date__lte'],
    ['modified_date__gte=soon', 'modified_date__gte'],
    ['modified_date__lte=10:00', 'modified_date__lte'],
    ['webhook=abc', 'webhook'],
    ['content_type=abc', 'content_type'],
    ['response_http_status=ok', 'response_http_status'],
  ];
  for (const [query, field] of cases) {
    test(`${query} -> 400 {"${field}": ["message"]}`, async () => {
      const res = await get(`${LIST}?${query}`);
      assert.equal(res.statusCode, 400, res.body);
      const body = res.json() as Record<string, unknown>;
      assert.deepEqual(Object.keys(body), [field]);
      const messages = body[field] as unknown[];
      assert.ok(Array.isArray(messages) && messages.length === 1, res.body);
      assert.equal(typeof messages[0], 'string');
      assert.ok((messages[0] as string).length > 0);
    });
  }

  test('the messages are DRF’s / django-filter’s', async () => {
    const msg = async (q: string) => ((await get(`${LIST}?${q}`)).json() as Json)[q.split('=')[0]!];
    assert.deepEqual(await msg('delivered=maybe'), [
      'Select a valid choice. That choice is not one of the available choices.',
    ]);
    assert.deepEqual(await msg('uuid=nope'), ['Enter a valid UUID.']);
    assert.deepEqual(await msg('created_date__gte=yesterday'), ['Enter a valid date/time.']);
    assert.deepEqual(await msg('webhook=abc'), ['A valid integer is required.']);
  });

  test('several bad values are all reported', async () => {
    const res = await get(`${LIST}?delivered=maybe&uuid=nope&created_date__gte=yesterday`);
    assert.equal(res.statusCode, 400);
    assert.deepEqual(Object.keys(res.json() as Json).sort(), [
      'created_date__gte',
      'delivered',
      'uuid',
    ]);
  });
});

describe('per-user scope', () => {
  test('a non-admin lists only the events of their own webhooks', async () => {
    assert.deepEqual(await listKeys('', 'alice'), ['e4']);
    assert.deepEqual(await listKeys('', 'bob'), []);
    const res = await get(LIST, 'alice');
    const body = res.json() as Json;
    assertPageShape(body);
    assert.equal(body.count, 1);
    assert.deepEqual((body.results as Json[])[0], ev.e4);
  });

  test('filters cannot reach another user’s events', async () => {
    assert.deepEqual(await listKeys(`webhook=${hookA.id as number}`, 'alice'), []);
    assert.deepEqual(await listKeys(`uuid=${ev.e1.uuid as string}`, 'alice'), []);
    assert.deepEqual(await listKeys('delivered=true', 'alice'), []);
    assert.deepEqual(await listKeys('delivered=false', 'alice'), ['e4']);
  });

  test('detail of another user’s event is 404; of one’s own, the event', async () => {
    for (const key of ['e1', 'e2', 'e3', 'e5'] as const) {
      const res = await get(`${LIST}${ev[key].id as number}/`, 'alice');
      assert.equal(res.statusCode, 404);
      assert.deepEqual(res.json(), { detail: 'Not found.' });
    }
    const own = await get(`${LIST}${ev.e4.id as number}/`, 'alice');
    assert.equal(own.statusCode, 200);
    assert.deepEqual(own.json(), ev.e4);
    const bob = await get(`${LIST}${ev.e4.id as number}/`, 'bob');
    assert.equal(bob.statusCode, 404);
  });

  test('no token is 401', async () => {
    const res = await ctx.api({ method: 'GET', url: LIST, as: null });
    assert.equal(res.statusCode, 401);
    assert.ok(typeof (res.json() as Json).detail === 'string');
  });
});

describe('odd but valid requests', () => {
  test('empty filter and page values are ignored, as django-filter and DRF do', async () => {
    const q =
      'event_type=&object_id=&delivered=&uuid=&webhook=&content_type=&response_http_status=' +
      '&created_date__gte=&created_date__lte=&modified_date__gte=&modified_date__lte=' +
      '&ordering=&page=&page_size=';
    const res = await get(`${LIST}?${q}`);
    assert.equal(res.statusCode, 200, res.body);
    const body = res.json() as Json;
    assert.equal(body.count, 5);
    assert.deepEqual(
      (body.results as Json[]).map((e) => e.id),
      ['e5', 'e4', 'e3', 'e2', 'e1'].map((k) => ev[k as Key].id),
    );
  });

  test('a repeated parameter takes its last value, as Django’s QueryDict.get does', async () => {
    const res = await get(`${LIST}?webhook=${hookB.id as number}&webhook=${hookA.id as number}`);
    assert.equal(res.statusCode, 200, res.body);
    assert.deepEqual(
      (res.json() as { results: Json[] }).results.map((e) => e.id),
      [ev.e5.id, ev.e2.id, ev.e1.id],
    );
  });

  test('integer filters beyond the column range match nothing instead of failing', async () => {
    for (const q of [
      'webhook=99999999999',
      'content_type=99999999999',
      'response_http_status=99999999999',
      'response_http_status=-99999999999',
    ]) {
      const res = await get(`${LIST}?${q}`);
      assert.equal(res.statusCode, 200, `${q}: ${res.body}`);
      assert.equal((res.json() as Json).count, 0);
    }
  });

  test('a detail pk beyond the id range is 404, not a server error', async () => {
    const res = await get(`${LIST}99999999999999999999/`);
    assert.equal(res.statusCode, 404, res.body);
    assert.deepEqual(res.json(), { detail: 'Not found.' });
  });

  test('NUL characters in text filters are a 400, as Django’s CharField reports them', async () => {
    for (const field of ['event_type', 'object_id']) {
      const res = await get(`${LIST}?${field}=a%00b`);
      assert.equal(res.statusCode, 400, res.body);
      assert.deepEqual(res.json(), { [field]: ['Null characters are not allowed.'] });
    }
  });

  test('impossible dates are a 400, not a server error', async () => {
    for (const v of [
      '2026-02-30',
      '2026-02-29T10:00:00Z',
      '0000-01-01',
      '2026-00-10',
      '2026-01-15T24:00:00Z',
      '2026-01-15T10:60:00Z',
      '2026-01-15T10:00:60Z',
      '2026-01-15T10:00:00+24:00',
    ]) {
      const res = await get(`${LIST}?created_date__gte=${encodeURIComponent(v)}`);
      assert.equal(res.statusCode, 400, `${v}: ${res.body}`);
      assert.deepEqual(res.json(), { created_date__gte: ['Enter a valid date/time.'] });
    }
  });

  test('any UTC offset is honoured, including ones PostgreSQL cannot parse', async () => {
    for (const v of [
      '2026-01-15T10:02:00Z',
      '2026-01-15T02:02:00-08:00',
      '2026-01-15T11:02:00+0100',
      '2026-01-15T15:32:00+05:30',
      '2026-01-16T02:02:00+16:00',
      '2026-01-15 10:02:00Z',
    ]) {
      assert.deepEqual(
        await listKeys(`created_date__gte=${encodeURIComponent(v)}`),
        ['e5', 'e4', 'e3'],
        v,
      );
    }
  });

  test('a date or time without an offset is UTC, whatever the database’s time zone', async (t) => {
    if (ctx.db.kind !== 'pglite') return t.skip('needs the single PGlite session to set a zone');
    await ctx.db.query(`set time zone 'Asia/Tokyo'`);
    try {
      assert.deepEqual(await listKeys('created_date__lte=2026-01-15T10:00:00'), ['e1']);
      assert.deepEqual(await listKeys('created_date__lte=2026-01-15T10:01:00.000123'), [
        'e2',
        'e1',
      ]);
      assert.deepEqual(await listKeys('created_date__lte=2026-01-15'), []);
      assert.equal((await listKeys('created_date__gte=2026-01-15')).length, 5);
      assert.deepEqual(await listKeys('modified_date__gte=2026-01-15 10:03:06'), [
        'e5',
        'e4',
        'e2',
      ]);
    } finally {
      await ctx.db.query(`set time zone 'UTC'`);
    }
  });
});
