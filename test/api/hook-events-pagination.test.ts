import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createContext, type Context } from '../helpers/context.js';
import { assertPageShape, pathOf } from './hook-events-shape.js';

/**
 * DRF page-number pagination of /api/v1/oms/oms_hook_events/: page sizes, absolute
 * next/previous links that lead to the neighbouring pages, errors, and the page-size cap.
 */
const LIST = '/api/v1/oms/oms_hook_events/';
const ORIGIN = 'http://localhost:80';
type Json = Record<string, unknown>;
interface PageBody {
  count: number;
  next: string | null;
  previous: string | null;
  results: Json[];
}

let ctx: Context; // default settings: page size 20, cap 1000
let capped: Context; // MAX_PAGE_SIZE=5
let ids: number[]; // every event id, newest first
let deliveredIds: number[]; // the delivered ones, newest first

async function page(c: Context, url: string): Promise<PageBody> {
  const res = await c.api({ method: 'GET', url });
  assert.equal(res.statusCode, 200, `${url}: ${res.body}`);
  const body = res.json() as PageBody;
  assertPageShape(body as unknown as Json);
  return body;
}

before(async () => {
  ctx = await createContext();
  capped = await createContext({ MAX_PAGE_SIZE: '5' });
  // Events with an even n are delivered, odd ones fail once (the receiver answers 500).
  ctx.receiver.respond((req) => {
    const { payload } = JSON.parse(req.body) as { payload: { n: number } };
    return payload.n % 2 === 0 ? { status: 200, body: 'ok' } : { status: 500, body: 'boom' };
  });
  const hook = await ctx.createWebhook({ config: { max_retries: 1 } });
  for (let n = 1; n <= 23; n++) {
    ctx.clock.advance(1000);
    assert.equal(await ctx.publish(hook.id as number, { n }), 202);
  }
  assert.equal(await ctx.worker.runOnce(), 23);
  const { rows } = await ctx.db.query<{ id: number; delivered: boolean }>(
    'select id, delivered from hook_events order by id desc',
  );
  ids = rows.map((r) => r.id);
  deliveredIds = rows.filter((r) => r.delivered).map((r) => r.id);
  assert.equal(ids.length, 23);
  assert.equal(deliveredIds.length, 11);

  const cappedHook = await capped.createWebhook();
  for (let n = 1; n <= 12; n++) {
    capped.clock.advance(1000);
    assert.equal(await capped.publish(cappedHook.id as number, { n }), 202);
  }
});

after(async () => {
  await ctx.close();
  await capped.close();
});

describe('page size', () => {
  test('the default page size is 20; next is the absolute link to page 2', async () => {
    const body = await page(ctx, LIST);
    assert.equal(body.count, 23);
    assert.deepEqual(
      body.results.map((e) => e.id),
      ids.slice(0, 20),
    );
    assert.equal(body.next, `${ORIGIN}${LIST}?page=2`);
    assert.equal(body.previous, null);
  });

  test('page_size sets the page length; count stays the total', async () => {
    const body = await page(ctx, `${LIST}?page_size=7`);
    assert.equal(body.count, 23);
    assert.deepEqual(
      body.results.map((e) => e.id),
      ids.slice(0, 7),
    );
    // DRF's replace_query_param sorts the parameters by name
    assert.equal(body.next, `${ORIGIN}${LIST}?page=2&page_size=7`);
    const next = new URL(body.next!);
    assert.equal(next.origin, 'http://localhost');
    assert.equal(next.pathname, LIST);
    assert.equal(next.searchParams.get('page'), '2');
    assert.equal(next.searchParams.get('page_size'), '7');
  });

  test('page_size larger than the total gives one page without links', async () => {
    const body = await page(ctx, `${LIST}?page_size=100`);
    assert.equal(body.results.length, 23);
    assert.equal(body.next, null);
    assert.equal(body.previous, null);
  });

  test('page_size is capped by MAX_PAGE_SIZE; the links keep the asked page_size', async () => {
    assert.equal(capped.config.maxPageSize, 5);
    const first = await page(capped, `${LIST}?page_size=100`);
    assert.equal(first.count, 12);
    assert.equal(first.results.length, 5);
    assert.equal(new URL(first.next!).searchParams.get('page_size'), '100');
    const second = await page(capped, pathOf(first.next!));
    assert.equal(second.results.length, 5);
    const third = await page(capped, pathOf(second.next!));
    assert.equal(third.results.length, 2);
    assert.equal(third.next, null);
    const seen = [...first.results, ...second.results, ...third.results].map((e) => e.id);
    assert.equal(new Set(seen).size, 12);
    // without page_size the cap also bounds the default of 20
    assert.equal((await page(capped, LIST)).results.length, 5);
    // page 4 of 5-item pages does not exist
    const past = await capped.api({ method: 'GET', url: `${LIST}?page_size=100&page=4` });
    assert.equal(past.statusCode, 404);
    assert.deepEqual(past.json(), { detail: 'Invalid page.' });
  });
});

describe('links', () => {
  test('following next walks every event once, newest first, and previous walks back', async () => {
    const seen: number[] = [];
    const pages: PageBody[] = [];
    let url: string | null = `${LIST}?page_size=5`;
    while (url) {
      const body = await page(ctx, url);
      pages.push(body);
      seen.push(...body.results.map((e) => e.id as number));
      url = body.next && pathOf(body.next);
    }
    assert.deepEqual(seen, ids);
    assert.equal(pages.length, 5);
    assert.deepEqual(
      pages.map((p) => p.results.length),
      [5, 5, 5, 5, 3],
    );
    // and back again
    const back: number[][] = [];
    let prev: string | null = pages[4]!.previous;
    while (prev) {
      const body = await page(ctx, pathOf(prev));
      back.push(body.results.map((e) => e.id as number));
      prev = body.previous;
    }
    assert.deepEqual(back, [
      ids.slice(15, 20),
      ids.slice(10, 15),
      ids.slice(5, 10),
      ids.slice(0, 5),
    ]);
  });

  test('previous of page 2 has no page parameter; of page 3 it is page=2', async () => {
    const p2 = await page(ctx, `${LIST}?page=2&page_size=5`);
    const prev = new URL(p2.previous!);
    assert.equal(prev.searchParams.has('page'), false);
    assert.equal(prev.searchParams.get('page_size'), '5');
    assert.equal(p2.previous, `${ORIGIN}${LIST}?page_size=5`);
    const p3 = await page(ctx, `${LIST}?page=3&page_size=5`);
    assert.equal(new URL(p3.previous!).searchParams.get('page'), '2');
    assert.equal(new URL(p3.next!).searchParams.get('page'), '4');
  });

  test('the last page has next null and its own previous', async () => {
    const last = await page(ctx, `${LIST}?page=2`);
    assert.equal(last.results.length, 3);
    assert.deepEqual(
      last.results.map((e) => e.id),
      ids.slice(20),
    );
    assert.equal(last.next, null);
    assert.equal(last.previous, `${ORIGIN}${LIST}`);
  });

  test('filters and ordering are kept in the links and apply on every page', async () => {
    const first = await page(ctx, `${LIST}?delivered=true&ordering=id&page_size=4`);
    assert.equal(first.count, 11);
    assert.equal(first.next, `${ORIGIN}${LIST}?delivered=true&ordering=id&page=2&page_size=4`);
    const next = new URL(first.next!);
    assert.equal(next.searchParams.get('delivered'), 'true');
    assert.equal(next.searchParams.get('ordering'), 'id');
    assert.equal(next.searchParams.get('page_size'), '4');
    assert.equal(next.searchParams.get('page'), '2');
    const all: Json[] = [...first.results];
    let url: string | null = pathOf(first.next!);
    while (url) {
      const body = await page(ctx, url);
      assert.equal(body.count, 11);
      all.push(...body.results);
      if (body.previous) {
        const prev = new URL(body.previous);
        assert.equal(prev.searchParams.get('delivered'), 'true');
        assert.equal(prev.searchParams.get('ordering'), 'id');
      }
      url = body.next && pathOf(body.next);
    }
    assert.deepEqual(
      all.map((e) => e.id),
      [...deliveredIds].reverse(),
    );
    assert.ok(all.every((e) => e.delivered === true));
  });

  test('query values with reserved characters survive the round trip', async () => {
    const first = await page(
      ctx,
      `${LIST}?page_size=2&event_type=package.created&object_id=a%26b%20c`,
    );
    assert.equal(first.count, 0);
    const body = await page(ctx, `${LIST}?page_size=2&object_id=1&event_type=package.created`);
    assert.equal(body.count, 23);
    const next = new URL(body.next!);
    assert.equal(next.searchParams.get('event_type'), 'package.created');
    assert.equal(next.searchParams.get('object_id'), '1');
    const p2 = await page(ctx, pathOf(body.next!));
    assert.deepEqual(
      p2.results.map((e) => e.id),
      ids.slice(2, 4),
    );
  });
});

describe('errors', () => {
  test('a page past the end is 404 {"detail": "Invalid page."}', async () => {
    for (const url of [`${LIST}?page=3`, `${LIST}?page=6&page_size=5`, `${LIST}?page=999999999`]) {
      const res = await ctx.api({ method: 'GET', url });
      assert.equal(res.statusCode, 404, url);
      assert.deepEqual(res.json(), { detail: 'Invalid page.' });
    }
  });

  test('a page number too large for any offset is still 404 "Invalid page."', async () => {
    const res = await ctx.api({ method: 'GET', url: `${LIST}?page=99999999999999999999` });
    assert.equal(res.statusCode, 404, res.body);
    assert.deepEqual(res.json(), { detail: 'Invalid page.' });
  });

  test('an empty result has page 1 only', async () => {
    const empty = await page(ctx, `${LIST}?event_type=order.created`);
    assert.deepEqual(empty, { count: 0, next: null, previous: null, results: [] });
    const res = await ctx.api({ method: 'GET', url: `${LIST}?event_type=order.created&page=2` });
    assert.equal(res.statusCode, 404);
    assert.deepEqual(res.json(), { detail: 'Invalid page.' });
  });

  for (const [query, field] of [
    ['page=0', 'page'],
    ['page=-1', 'page'],
    ['page=abc', 'page'],
    ['page=1.5', 'page'],
    ['page_size=0', 'page_size'],
    ['page_size=abc', 'page_size'],
  ] as const) {
    test(`${query} is 400 {"${field}": ["message"]}`, async () => {
      const res = await ctx.api({ method: 'GET', url: `${LIST}?${query}` });
      assert.equal(res.statusCode, 400, res.body);
      const body = res.json() as Record<string, unknown>;
      assert.deepEqual(Object.keys(body), [field]);
      const messages = body[field] as unknown[];
      assert.ok(Array.isArray(messages) && messages.length === 1);
      assert.equal(typeof messages[0], 'string');
    });
  }

  test('the 400 messages are DRF’s', async () => {
    const zero = await ctx.api({ method: 'GET', url: `${LIST}?page=0` });
    assert.deepEqual(zero.json(), { page: ['Ensure this value is greater than or equal to 1.'] });
    const abc = await ctx.api({ method: 'GET', url: `${LIST}?page=abc` });
    assert.deepEqual(abc.json(), { page: ['A valid integer is required.'] });
  });
});
