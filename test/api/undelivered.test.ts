import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createContext, type Context } from '../helpers/context.js';
import type { Reply } from '../helpers/receiver.js';
import {
  assertPageShape,
  HOOK_EVENT_KEYS,
  PAGE_KEYS,
  pathOf,
  seedExamples,
  WEBHOOK_KEYS,
} from './hook-events-shape.js';

/**
 * /api/v1/oms/settings/undelivered_webhooks/: events that were attempted and not
 * delivered, never the delivered ones nor those not attempted yet; with the same shape,
 * pagination, filters and per-user scope as the hook-event list.
 */
const UNDELIVERED = '/api/v1/oms/settings/undelivered_webhooks/';
const EVENTS = '/api/v1/oms/oms_hook_events/';
const ORIGIN = 'http://localhost:80';
type Json = Record<string, unknown>;
type Key = 'u1' | 'u2' | 'd1' | 'f1' | 'a1' | 'x1' | 'c1' | 'n1';
type Who = 'admin' | 'alice' | 'bob';

const at = (time: string) => Date.parse(`2026-01-15T${time}Z`);
const ts = (time: string) => `2026-01-15T${time}Z`;

let ctx: Context;
let hookMain: Json; // admin, default retries
let hookOne: Json; // admin, max_retries 1
let hookAlice: Json; // alice's
let hookDead: Json; // admin, nothing listens there
const ev = {} as Record<Key, Json>;
/** How the receiver answers the event with payload key m1 (the resend test). */
let m1Reply: Reply = { status: 500, body: 'boom-m1' };

const keyOf = (e: Json) => (e.request_payload as { payload: { key: Key } }).payload.key;

async function get(url: string, as: Who = 'admin') {
  return ctx.api({ method: 'GET', url, as });
}

async function undeliveredKeys(query = '', as: Who = 'admin'): Promise<Key[]> {
  const res = await get(`${UNDELIVERED}?page_size=100${query ? `&${query}` : ''}`, as);
  assert.equal(res.statusCode, 200, res.body);
  const body = res.json() as { count: number; results: Json[] };
  assert.equal(body.count, body.results.length);
  return body.results.map(keyOf);
}

async function publish(hook: Json, data: Json, pk: number | string = 1) {
  const status = await ctx.publish(hook.id as number, data, {
    instance: { pk, model: 'package', data },
  });
  assert.equal(status, 202);
}

before(async () => {
  ctx = await createContext();
  const seen = new Map<string, number>();
  ctx.receiver.respond((req) => {
    const body = JSON.parse(req.body) as {
      event: { uuid: string };
      payload: { key: string; status?: number; reply?: string; flaky?: boolean };
    };
    const { payload } = body;
    if (payload.key === 'm1') return m1Reply;
    const n = (seen.get(body.event.uuid) ?? 0) + 1;
    seen.set(body.event.uuid, n);
    if (payload.flaky) return n === 1 ? { status: 500, body: 'flaky' } : { status: 200 };
    return { status: payload.status ?? 200, body: payload.reply ?? 'ok' };
  });
  hookMain = await ctx.createWebhook();
  hookOne = await ctx.createWebhook({ config: { max_retries: 1 } });
  hookAlice = await ctx.createWebhook({}, 'alice');
  hookDead = await ctx.createWebhook({
    target_url: 'http://127.0.0.1:1/hook',
    config: { max_retries: 1 },
  });

  ctx.clock.set(at('10:00:00.000'));
  await publish(hookMain, { key: 'u1', status: 500, reply: 'boom-u1' }, 1);
  ctx.clock.set(at('10:01:00.000'));
  await publish(hookMain, { key: 'u2', status: 500, reply: 'boom-u2' }, 'PKG-2');
  ctx.clock.set(at('10:02:00.000'));
  await publish(hookMain, { key: 'd1', status: 200, reply: 'fine' }, 3);
  ctx.clock.set(at('10:03:00.000'));
  await publish(hookMain, { key: 'f1', flaky: true }, 4);
  ctx.clock.set(at('10:04:00.000'));
  await publish(hookAlice, { key: 'a1', status: 500, reply: 'boom-a1' }, 5);
  ctx.clock.set(at('10:05:00.000'));
  await publish(hookOne, { key: 'x1', status: 500, reply: 'boom-x1' }, 6);
  ctx.clock.set(at('10:06:00.000'));
  await publish(hookDead, { key: 'c1' }, 7);
  assert.equal(await ctx.worker.runOnce(), 7);
  // Retries after 2 s: u1, u2, a1 fail again; f1 is delivered; x1 and c1 are spent.
  ctx.clock.set(at('10:06:02.000'));
  assert.equal(await ctx.worker.runOnce(), 4);
  ctx.clock.set(at('10:10:00.000'));
  await publish(hookMain, { key: 'n1', status: 500 }, 8); // never attempted

  const res = await get(`${EVENTS}?page_size=100`);
  for (const e of (res.json() as { results: Json[] }).results) ev[keyOf(e)] = e;
  assert.equal(Object.keys(ev).length, 8);
});

after(() => ctx.close());

describe('contents', () => {
  test('the body and its events have exactly the documented keys', async (t) => {
    const res = await get(UNDELIVERED);
    assert.equal(res.statusCode, 200);
    const body = res.json() as Json;
    assert.deepEqual(Object.keys(body), PAGE_KEYS);
    assertPageShape(body);
    for (const e of body.results as Json[]) {
      assert.deepEqual(Object.keys(e), HOOK_EVENT_KEYS);
      assert.deepEqual(Object.keys(e.webhook as Json), WEBHOOK_KEYS);
    }
    const seed = seedExamples();
    if (!seed) return t.skip('seed files not present');
    const example = (seed.undelivered.results as Json[])[0]!;
    assert.deepEqual(Object.keys((body.results as Json[])[0]!), Object.keys(example));
    assert.deepEqual(
      Object.keys((body.results as Json[])[0]!.webhook as Json),
      Object.keys(example.webhook as Json),
    );
  });

  test('only attempted, undelivered events are listed, newest first', async () => {
    assert.deepEqual(await undeliveredKeys(), ['c1', 'x1', 'a1', 'u2', 'u1']);
    const body = (await get(UNDELIVERED)).json() as Json;
    assert.equal(body.count, 5);
    assert.equal(body.next, null);
    assert.equal(body.previous, null);
  });

  test('delivered, delivered-after-retry and never-attempted events are left out', async () => {
    const listed = await undeliveredKeys();
    for (const key of ['d1', 'f1', 'n1'] as const) assert.ok(!listed.includes(key), key);
    const { rows } = await ctx.db.query<{
      uuid: string;
      delivered: boolean;
      retry_count: number | null;
    }>('select uuid::text as uuid, delivered, retry_count from hook_events');
    const row = (k: Key) => rows.find((r) => r.uuid === ev[k].uuid)!;
    assert.deepEqual([row('d1').delivered, row('d1').retry_count], [true, 1]);
    assert.deepEqual([row('f1').delivered, row('f1').retry_count], [true, 2]);
    assert.deepEqual([row('n1').delivered, row('n1').retry_count], [false, null]);
    // and every row that is attempted and not delivered is listed
    const expected = rows
      .filter((r) => !r.delivered && r.retry_count !== null)
      .map((r) => r.uuid)
      .sort();
    const res = (await get(`${UNDELIVERED}?page_size=100`)).json() as { results: Json[] };
    assert.deepEqual(res.results.map((e) => e.uuid).sort(), expected);
  });

  test('each entry carries the last response: the receiver’s body text and 500', async () => {
    const res = (await get(`${UNDELIVERED}?page_size=100`)).json() as { results: Json[] };
    for (const e of res.results) {
      const key = keyOf(e);
      assert.equal(e.delivered, false);
      assert.ok((e.retry_count as number) >= 1);
      assert.equal((e.request_datetimes as string[]).length, e.retry_count);
      if (key === 'c1') continue;
      assert.equal(e.response_http_status, 500, key);
      assert.equal(e.response_content, `boom-${key}`);
      const hex = (e.uuid as string).replaceAll('-', '');
      const got = ctx.receiver.requests.filter(
        (r) => (JSON.parse(r.body) as { event: { uuid: string } }).event.uuid === hex,
      );
      assert.equal(got.length, e.retry_count, `${key} attempts the receiver saw`);
    }
  });

  test('attempt history: newest first, clock times with microseconds', async () => {
    const res = (await get(`${UNDELIVERED}?page_size=100`)).json() as { results: Json[] };
    const u1 = res.results.find((e) => keyOf(e) === 'u1')!;
    assert.equal(u1.retry_count, 2);
    assert.deepEqual(u1.request_datetimes, [ts('10:06:02.000000'), ts('10:06:00.000000')]);
    assert.equal(u1.created_date, ts('10:00:00.000000'));
    assert.equal(u1.modified_date, ts('10:06:02.000000'));
    const x1 = res.results.find((e) => keyOf(e) === 'x1')!;
    assert.equal(x1.retry_count, 1); // its attempts are spent, and it stays listed
    assert.deepEqual(x1.request_datetimes, [ts('10:06:00.000000')]);
  });

  test('an event whose target never answered is listed with status null', async () => {
    const res = (await get(`${UNDELIVERED}?uuid=${ev.c1.uuid as string}`)).json() as {
      results: Json[];
    };
    const c1 = res.results[0]!;
    assert.equal(c1.response_http_status, null);
    assert.equal(typeof c1.response_content, 'string');
    assert.ok((c1.response_content as string).length > 0);
    assert.equal(c1.retry_count, 1);
  });

  test('entries equal the event’s detail and its entry in the hook-event list', async () => {
    const res = (await get(`${UNDELIVERED}?page_size=100`)).json() as { results: Json[] };
    for (const e of res.results) {
      assert.deepEqual(e, ev[keyOf(e)]);
      const detail = await get(`${EVENTS}${e.id as number}/`);
      assert.deepEqual(detail.json(), e);
    }
  });

  test('object_id keeps the published type; content_type is 4 for package', async () => {
    const res = (await get(`${UNDELIVERED}?page_size=100`)).json() as { results: Json[] };
    const byKey = Object.fromEntries(res.results.map((e) => [keyOf(e), e]));
    assert.strictEqual(byKey.u1!.object_id, 1);
    assert.strictEqual(byKey.u2!.object_id, 'PKG-2');
    for (const e of res.results) assert.strictEqual(e.content_type, 4);
  });

  test('an event leaves the list once a resend delivers it', async () => {
    const hook = await ctx.createWebhook();
    m1Reply = { status: 500, body: 'boom-m1' };
    await publish(hook, { key: 'm1' }, 9);
    const { rows } = await ctx.db.query<{ uuid: string }>(
      `select uuid::text as uuid from hook_events where webhook_id = $1`,
      [hook.id],
    );
    const uuid = rows[0]!.uuid;
    const q = `webhook=${hook.id as number}`;
    assert.deepEqual(await undeliveredKeys(q), []); // not attempted yet

    const resend = () =>
      ctx.api({ method: 'POST', url: `${EVENTS}resend-event/`, payload: { event: uuid } });
    assert.equal((await resend()).statusCode, 200);
    assert.deepEqual(await undeliveredKeys(q), ['m1']);
    const failed = (await get(`${UNDELIVERED}?${q}`)).json() as { results: Json[] };
    assert.equal(failed.results[0]!.response_content, 'boom-m1');
    assert.equal(failed.results[0]!.response_http_status, 500);

    m1Reply = { status: 200, body: 'thanks' };
    assert.equal((await resend()).statusCode, 200);
    assert.deepEqual(await undeliveredKeys(q), []);
    const listed = (await get(`${EVENTS}?${q}`)).json() as { results: Json[] };
    assert.equal(listed.results[0]!.delivered, true);
    assert.equal(listed.results[0]!.retry_count, 2);
    assert.deepEqual(await undeliveredKeys(), ['c1', 'x1', 'a1', 'u2', 'u1']);
  });
});

describe('pagination', () => {
  test('page_size, absolute links that lead to the neighbouring pages', async () => {
    const first = (await get(`${UNDELIVERED}?page_size=2`)).json() as Json;
    assertPageShape(first);
    assert.equal(first.count, 5);
    assert.equal(first.next, `${ORIGIN}${UNDELIVERED}?page=2&page_size=2`);
    assert.equal(first.previous, null);
    const second = (await get(pathOf(first.next as string))).json() as Json;
    assert.equal(second.previous, `${ORIGIN}${UNDELIVERED}?page_size=2`);
    assert.equal(new URL(second.previous as string).searchParams.has('page'), false);
    const third = (await get(pathOf(second.next as string))).json() as Json;
    assert.equal(third.next, null);
    assert.equal(new URL(third.previous as string).searchParams.get('page'), '2');
    const keys = [first, second, third].flatMap((p) => (p.results as Json[]).map(keyOf));
    assert.deepEqual(keys, ['c1', 'x1', 'a1', 'u2', 'u1']);
  });

  test('links keep the filters', async () => {
    const first = (
      await get(`${UNDELIVERED}?response_http_status=500&ordering=id&page_size=3`)
    ).json() as Json;
    assert.equal(first.count, 4);
    assert.equal(
      first.next,
      `${ORIGIN}${UNDELIVERED}?ordering=id&page=2&page_size=3&response_http_status=500`,
    );
    const second = (await get(pathOf(first.next as string))).json() as Json;
    assert.deepEqual((second.results as Json[]).map(keyOf), ['x1']);
  });

  test('a page past the end is 404 "Invalid page."; page=0 and page=abc are 400', async () => {
    const past = await get(`${UNDELIVERED}?page=2`);
    assert.equal(past.statusCode, 404);
    assert.deepEqual(past.json(), { detail: 'Invalid page.' });
    for (const v of ['0', 'abc']) {
      const res = await get(`${UNDELIVERED}?page=${v}`);
      assert.equal(res.statusCode, 400);
      const body = res.json() as Json;
      assert.deepEqual(Object.keys(body), ['page']);
      assert.equal(typeof (body.page as unknown[])[0], 'string');
    }
  });
});

describe('filters and ordering', () => {
  test('webhook', async () => {
    assert.deepEqual(await undeliveredKeys(`webhook=${hookMain.id as number}`), ['u2', 'u1']);
    assert.deepEqual(await undeliveredKeys(`webhook=${hookOne.id as number}`), ['x1']);
    assert.deepEqual(await undeliveredKeys(`webhook=${hookDead.id as number}`), ['c1']);
    assert.deepEqual(await undeliveredKeys(`webhook=${hookAlice.id as number}`), ['a1']);
  });

  test('delivered', async () => {
    assert.deepEqual(await undeliveredKeys('delivered=false'), ['c1', 'x1', 'a1', 'u2', 'u1']);
    assert.deepEqual(await undeliveredKeys('delivered=true'), []);
  });

  test('uuid with and without dashes', async () => {
    const uuid = ev.u2.uuid as string;
    assert.deepEqual(await undeliveredKeys(`uuid=${uuid}`), ['u2']);
    assert.deepEqual(await undeliveredKeys(`uuid=${uuid.replaceAll('-', '')}`), ['u2']);
    // a delivered event's uuid finds nothing here
    assert.deepEqual(await undeliveredKeys(`uuid=${ev.d1.uuid as string}`), []);
  });

  test('event_type, object_id, content_type, response_http_status', async () => {
    assert.deepEqual(await undeliveredKeys('event_type=package.created'), [
      'c1',
      'x1',
      'a1',
      'u2',
      'u1',
    ]);
    assert.deepEqual(await undeliveredKeys('event_type=order.created'), []);
    assert.deepEqual(await undeliveredKeys('object_id=PKG-2'), ['u2']);
    assert.deepEqual(await undeliveredKeys('object_id=6'), ['x1']);
    assert.deepEqual(await undeliveredKeys('object_id=3'), []); // d1: delivered
    assert.deepEqual(await undeliveredKeys('content_type=4'), ['c1', 'x1', 'a1', 'u2', 'u1']);
    assert.deepEqual(await undeliveredKeys('content_type=3'), []);
    assert.deepEqual(await undeliveredKeys('response_http_status=500'), ['x1', 'a1', 'u2', 'u1']);
    assert.deepEqual(await undeliveredKeys('response_http_status=200'), []);
  });

  test('created_date and modified_date ranges', async () => {
    assert.deepEqual(await undeliveredKeys('created_date__gte=2026-01-15T10:04:00Z'), [
      'c1',
      'x1',
      'a1',
    ]);
    assert.deepEqual(await undeliveredKeys('created_date__lte=2026-01-15T10:01:00Z'), ['u2', 'u1']);
    assert.deepEqual(await undeliveredKeys('modified_date__gte=2026-01-15T10:06:01Z'), [
      'a1',
      'u2',
      'u1',
    ]);
    assert.deepEqual(await undeliveredKeys('modified_date__lte=2026-01-15T10:06:00Z'), [
      'c1',
      'x1',
    ]);
  });

  test('ordering', async () => {
    assert.deepEqual(await undeliveredKeys('ordering=id'), ['u1', 'u2', 'a1', 'x1', 'c1']);
    assert.deepEqual(await undeliveredKeys('ordering=-created_date'), [
      'c1',
      'x1',
      'a1',
      'u2',
      'u1',
    ]);
    assert.deepEqual(await undeliveredKeys('ordering=retry_count'), ['x1', 'c1', 'u1', 'u2', 'a1']);
  });

  for (const [query, field] of [
    ['delivered=maybe', 'delivered'],
    ['uuid=nope', 'uuid'],
    ['created_date__gte=yesterday', 'created_date__gte'],
    ['webhook=abc', 'webhook'],
  ] as const) {
    test(`${query} is 400 {"${field}": ["message"]}`, async () => {
      const res = await get(`${UNDELIVERED}?${query}`);
      assert.equal(res.statusCode, 400, res.body);
      const body = res.json() as Json;
      assert.deepEqual(Object.keys(body), [field]);
      const messages = body[field] as unknown[];
      assert.ok(Array.isArray(messages) && messages.length === 1);
      assert.equal(typeof messages[0], 'string');
    });
  }
});

describe('per-user scope', () => {
  test('a non-admin sees only the undelivered events of their own webhooks', async () => {
    assert.deepEqual(await undeliveredKeys('', 'alice'), ['a1']);
    assert.deepEqual(await undeliveredKeys('', 'bob'), []);
    assert.deepEqual(await undeliveredKeys(`webhook=${hookMain.id as number}`, 'alice'), []);
    assert.deepEqual(await undeliveredKeys(`uuid=${ev.u1.uuid as string}`, 'alice'), []);
    const res = (await get(UNDELIVERED, 'alice')).json() as Json;
    assertPageShape(res);
    assert.equal(res.count, 1);
    assert.deepEqual((res.results as Json[])[0], ev.a1);
  });

  test('no token is 401', async () => {
    const res = await ctx.api({ method: 'GET', url: UNDELIVERED, as: null });
    assert.equal(res.statusCode, 401);
  });
});
