import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import type { Db } from '../../src/store/db.js';
import { createContext, type Context } from '../helpers/context.js';
import { Receiver } from '../helpers/receiver.js';

const EMIT = '/api/v1/oms/oms_hook_events/emit/';
const PUBLISH = '/api/v1/oms/oms_hook_events/publish-event/';

let ctx: Context;
let source: Receiver;
before(async () => {
  ctx = await createContext();
  source = await Receiver.start();
});
after(async () => {
  await source.close();
  await ctx.close();
});
afterEach(async () => {
  // every test starts with no webhooks, no events and no source URL
  await ctx.db.query('delete from webhooks');
  await ctx.db.query('update content_types set source_url = null');
  ctx.receiver.respond(() => ({ status: 200, body: 'ok' }));
});

interface Row {
  uuid: string;
  webhook_id: number;
  event_type: string;
  request_payload: { event: { type: string; uuid: string }; payload: unknown };
  object_id: unknown;
  content_type_id: number | null;
}

async function allEvents(db: Db): Promise<Row[]> {
  const { rows } = await db.query<Row>(
    `select e.uuid::text as uuid, e.webhook_id, e.event_type, p.request_payload, e.object_id,
            e.content_type_id
     from hook_events e join hook_event_payloads p on p.hook_event_id = e.id order by e.id`,
  );
  return rows;
}

const requestsTo = (path: string) => ctx.receiver.requests.filter((r) => r.path === path);

const emit = (eventType: string, instance: Record<string, unknown>) =>
  ctx.api({ method: 'POST', url: EMIT, payload: { event_type: eventType, instance } });

const publishRaw = (payload: Record<string, unknown>) =>
  ctx.api({ method: 'POST', url: PUBLISH, payload });

describe('emit', () => {
  test('fans out to exact, package.* and * subscribers only, one event each', async () => {
    const hook = (path: string, body: Record<string, unknown>) =>
      ctx.createWebhook({ target_url: ctx.receiver.url(path), ...body });
    const exact = await hook('/emit/exact', { event_type: 'package.created' });
    const family = await hook('/emit/family', { event_type: 'package.*' });
    const all = await hook('/emit/all', { event_type: '*' });
    const alices = await ctx.createWebhook(
      { target_url: ctx.receiver.url('/emit/alice'), event_type: 'package.created' },
      'alice',
    );
    await hook('/emit/order', { event_type: 'order.created' });
    await hook('/emit/other-package', { event_type: 'package.updated' });
    await hook('/emit/inactive', { event_type: 'package.created', is_active: false });
    await hook('/emit/inactive-all', { event_type: '*', is_active: false });

    const res = await emit('package.created', { pk: 7, model: 'package', data: { number: 'E7' } });
    assert.equal(res.statusCode, 202);
    const uuids = res.json().events as string[];
    assert.equal(uuids.length, 4);

    const rows = await allEvents(ctx.db);
    assert.deepEqual(
      rows.map((r) => r.uuid).sort(),
      [...uuids].sort(),
      'the returned uuids are the rows created',
    );
    assert.deepEqual(
      rows.map((r) => r.webhook_id).sort((a, b) => a - b),
      [exact.id, family.id, all.id, alices.id].sort((a, b) => (a as number) - (b as number)),
    );
    for (const r of rows) {
      assert.equal(r.event_type, 'package.created');
      assert.deepEqual(r.request_payload, {
        event: { type: 'package.created', uuid: r.uuid.replaceAll('-', '') },
        payload: { number: 'E7' },
      });
      assert.equal(r.object_id, 7);
      assert.equal(r.content_type_id, 4);
    }

    assert.equal(await ctx.worker.runOnce(), 4);
    for (const path of ['/emit/exact', '/emit/family', '/emit/all', '/emit/alice']) {
      const got = requestsTo(path);
      assert.equal(got.length, 1, path);
      assert.equal(got[0]!.headers['x-whisperer-event'], 'package.created');
      const body = JSON.parse(got[0]!.body);
      assert.ok(uuids.map((u) => u.replaceAll('-', '')).includes(body.event.uuid));
      assert.ok(uuids.includes(String(got[0]!.headers['webhook-id'])));
      assert.deepEqual(body.payload, { number: 'E7' });
    }
    for (const path of [
      '/emit/order',
      '/emit/other-package',
      '/emit/inactive',
      '/emit/inactive-all',
    ]) {
      assert.equal(requestsTo(path).length, 0, path);
    }
    // each webhook got its own event
    const ids = ['/emit/exact', '/emit/family', '/emit/all', '/emit/alice'].map(
      (p) => requestsTo(p)[0]!.headers['webhook-id'],
    );
    assert.equal(new Set(ids).size, 4);
  });

  test('a deeper event type reaches package.* and * but not a single-segment pattern', async () => {
    await ctx.createWebhook({
      target_url: ctx.receiver.url('/deep/family'),
      event_type: 'package.*',
    });
    await ctx.createWebhook({ target_url: ctx.receiver.url('/deep/all'), event_type: '*' });
    await ctx.createWebhook({
      target_url: ctx.receiver.url('/deep/created'),
      event_type: 'package.created',
    });
    const res = await emit('package.status.shipped', { pk: 1, model: 'package', data: {} });
    assert.equal(res.statusCode, 202);
    assert.equal(res.json().events.length, 2);
    assert.equal(await ctx.worker.runOnce(), 2);
    assert.equal(
      requestsTo('/deep/family')[0]?.headers['x-whisperer-event'],
      'package.status.shipped',
    );
    assert.equal(
      requestsTo('/deep/all')[0]?.headers['x-whisperer-event'],
      'package.status.shipped',
    );
    assert.equal(requestsTo('/deep/created').length, 0);
  });

  test('emit is for admins', async () => {
    await ctx.createWebhook({ target_url: ctx.receiver.url('/emit/denied') }, 'alice');
    const res = await ctx.api({
      method: 'POST',
      url: EMIT,
      payload: { event_type: 'package.created', instance: { pk: 1, model: 'package', data: {} } },
      as: 'alice',
    });
    assert.equal(res.statusCode, 403);
    assert.deepEqual(await allEvents(ctx.db), []);
  });

  test('with no subscriber it answers 202 with no events and creates nothing', async () => {
    await ctx.createWebhook({ target_url: ctx.receiver.url('/none'), event_type: 'order.created' });
    const res = await emit('package.cancelled', { pk: 1, model: 'package', data: {} });
    assert.equal(res.statusCode, 202);
    assert.deepEqual(res.json(), { events: [] });
    assert.deepEqual(await allEvents(ctx.db), []);
  });

  test('emit fetches the payload from the source URL once for all subscribers', async () => {
    const before = source.requests.length;
    source.respond((r) =>
      r.path === '/objects/9'
        ? { status: 200, headers: { 'content-type': 'application/json' }, body: '{"id":9,"n":"X"}' }
        : { status: 404 },
    );
    await setSource(source.url('/objects/{pk}'));
    await ctx.createWebhook({
      target_url: ctx.receiver.url('/src/a'),
      event_type: 'package.created',
    });
    await ctx.createWebhook({ target_url: ctx.receiver.url('/src/b'), event_type: '*' });
    const res = await emit('package.created', { pk: 9, model: 'package' });
    assert.equal(res.statusCode, 202);
    assert.equal(source.requests.length - before, 1);
    assert.equal(await ctx.worker.runOnce(), 2);
    assert.deepEqual(JSON.parse(requestsTo('/src/a')[0]!.body).payload, { id: 9, n: 'X' });
    assert.deepEqual(JSON.parse(requestsTo('/src/b')[0]!.body).payload, { id: 9, n: 'X' });
  });
});

async function setSource(url: string | null): Promise<void> {
  const res = await ctx.api({
    method: 'PUT',
    url: '/api/v1/oms/content_types/4/',
    payload: { model: 'package', source_url: url },
  });
  assert.equal(res.statusCode, 200, res.body);
}

describe('publish-event', () => {
  test('to a package.* webhook needs a matching event_type', async () => {
    const hook = await ctx.createWebhook({
      target_url: ctx.receiver.url('/pub/family'),
      event_type: 'package.*',
    });
    const instance = { pk: 1, model: 'package', data: { n: 1 } };

    const missing = await publishRaw({ hook: hook.id, instance });
    assert.equal(missing.statusCode, 400);
    assert.ok(Array.isArray(missing.json().event_type), missing.body);

    const wrong = await publishRaw({ hook: hook.id, instance, event_type: 'order.created' });
    assert.equal(wrong.statusCode, 400);
    assert.ok(Array.isArray(wrong.json().event_type), wrong.body);
    assert.deepEqual(await allEvents(ctx.db), []);

    const ok = await publishRaw({ hook: hook.id, instance, event_type: 'package.status.shipped' });
    assert.equal(ok.statusCode, 202);
    const rows = await allEvents(ctx.db);
    assert.equal(rows.length, 1);
    assert.equal(rows[0]!.event_type, 'package.status.shipped');
    assert.equal(await ctx.worker.runOnce(), 1);
    const got = requestsTo('/pub/family');
    assert.equal(got.length, 1);
    assert.equal(got[0]!.headers['x-whisperer-event'], 'package.status.shipped');
    assert.equal(JSON.parse(got[0]!.body).event.type, 'package.status.shipped');
  });

  test('to an exact webhook uses its event type and refuses another', async () => {
    const hook = await ctx.createWebhook({ target_url: ctx.receiver.url('/pub/exact') });
    const instance = { pk: 1, model: 'package', data: {} };
    const other = await publishRaw({ hook: hook.id, instance, event_type: 'package.updated' });
    assert.equal(other.statusCode, 400);
    const same = await publishRaw({ hook: hook.id, instance, event_type: 'package.created' });
    assert.equal(same.statusCode, 202);
    const plain = await publishRaw({ hook: hook.id, instance });
    assert.equal(plain.statusCode, 202);
    assert.equal(await ctx.worker.runOnce(), 2);
    for (const r of requestsTo('/pub/exact')) {
      assert.equal(r.headers['x-whisperer-event'], 'package.created');
    }
  });

  test('to an inactive webhook is refused', async () => {
    const hook = await ctx.createWebhook({
      target_url: ctx.receiver.url('/pub/off'),
      is_active: false,
    });
    assert.equal(await ctx.publish(hook.id as number), 400);
    assert.deepEqual(await allEvents(ctx.db), []);
  });

  test('without instance.data the payload is fetched from the source URL at publish time', async () => {
    source.respond((r) =>
      r.path === '/objects/42'
        ? {
            status: 200,
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ id: 42, number: 'PKG-42', items: [{ sku: 'A', qty: 2 }] }),
          }
        : { status: 404, body: 'nope' },
    );
    await setSource(source.url('/objects/{pk}'));
    const hook = await ctx.createWebhook({ target_url: ctx.receiver.url('/pub/source') });
    const before = source.requests.length;
    const res = await publishRaw({ hook: hook.id, instance: { pk: 42, model: 'package' } });
    assert.equal(res.statusCode, 202, res.body);
    // fetched now, not at delivery
    assert.equal(source.requests.length, before + 1);
    assert.equal(source.requests.at(-1)!.method, 'GET');
    assert.equal(source.requests.at(-1)!.path, '/objects/42');

    source.respond(() => ({ status: 500, body: 'changed my mind' }));
    assert.equal(await ctx.worker.runOnce(), 1);
    assert.equal(source.requests.length, before + 1, 'delivery does not fetch again');
    const got = requestsTo('/pub/source');
    assert.equal(got.length, 1);
    assert.deepEqual(JSON.parse(got[0]!.body).payload, {
      id: 42,
      number: 'PKG-42',
      items: [{ sku: 'A', qty: 2 }],
    });
  });

  test('a failing source URL fails the publish with 502 and creates no event', async () => {
    source.respond(() => ({ status: 500, body: 'source down' }));
    await setSource(source.url('/objects/{pk}'));
    const hook = await ctx.createWebhook({ target_url: ctx.receiver.url('/pub/broken-source') });
    const res = await publishRaw({ hook: hook.id, instance: { pk: 42, model: 'package' } });
    assert.equal(res.statusCode, 502);
    assert.equal(typeof res.json().detail, 'string');
    assert.deepEqual(await allEvents(ctx.db), []);
    const queued = await ctx.db.query('select 1 from hook_event_queue');
    assert.equal(queued.rows.length, 0);

    const emitted = await emit('package.created', { pk: 42, model: 'package' });
    assert.equal(emitted.statusCode, 502);
    assert.equal(typeof emitted.json().detail, 'string');
    assert.deepEqual(await allEvents(ctx.db), []);
  });

  test('a source answering something other than a JSON object fails with 502', async () => {
    await setSource(source.url('/objects/{pk}'));
    const hook = await ctx.createWebhook({ target_url: ctx.receiver.url('/pub/bad-source') });
    for (const reply of [
      { status: 200, body: 'not json' },
      { status: 200, headers: { 'content-type': 'application/json' }, body: '[1,2]' },
    ]) {
      source.respond(() => reply);
      const res = await publishRaw({ hook: hook.id, instance: { pk: 5, model: 'package' } });
      assert.equal(res.statusCode, 502, reply.body);
      assert.equal(typeof res.json().detail, 'string');
    }
    assert.deepEqual(await allEvents(ctx.db), []);
  });

  test('instance.data wins over the source URL', async () => {
    const before = source.requests.length;
    await setSource(source.url('/objects/{pk}'));
    const hook = await ctx.createWebhook({ target_url: ctx.receiver.url('/pub/inline') });
    assert.equal(await ctx.publish(hook.id as number, { inline: true }), 202);
    assert.equal(source.requests.length, before);
    assert.equal(await ctx.worker.runOnce(), 1);
    assert.deepEqual(JSON.parse(requestsTo('/pub/inline')[0]!.body).payload, { inline: true });
  });

  test('object_id keeps an integer pk an integer and a string pk a string; content_type is the model id', async () => {
    const hook = await ctx.createWebhook({
      target_url: ctx.receiver.url('/pub/ids'),
      event_type: '*',
    });
    const cases: [unknown, string, number][] = [
      [42, 'package', 4],
      ['42', 'package', 4],
      ['PKG-7', 'package', 4],
      [1001, 'order', 3],
    ];
    for (const [pk, model] of cases) {
      const res = await publishRaw({
        hook: hook.id,
        event_type: `${model}.created`,
        instance: { pk, model, data: { pk } },
      });
      assert.equal(res.statusCode, 202, res.body);
    }
    const rows = await allEvents(ctx.db);
    assert.deepEqual(
      rows.map((r) => [r.object_id, r.content_type_id]),
      cases.map(([pk, , ct]) => [pk, ct]),
    );
    const listed = await ctx.api({
      method: 'GET',
      url: `/api/v1/oms/oms_hook_events/?webhook=${hook.id}&ordering=id`,
    });
    assert.equal(listed.statusCode, 200);
    assert.deepEqual(
      (listed.json().results as { object_id: unknown; content_type: number }[]).map((e) => [
        e.object_id,
        e.content_type,
      ]),
      cases.map(([pk, , ct]) => [pk, ct]),
    );
  });

  test('a form post keeps an all-digit pk an integer and any other pk a string', async () => {
    const hook = await ctx.createWebhook({ target_url: ctx.receiver.url('/pub/form') });
    for (const pk of ['42', 'PKG-9']) {
      const res = await ctx.api({
        method: 'POST',
        url: PUBLISH,
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        payload: `hook=${hook.id}&instance[pk]=${pk}&instance[model]=package&instance[data]=${encodeURIComponent('{"via":"form"}')}`,
      });
      assert.equal(res.statusCode, 202, res.body);
    }
    const rows = await allEvents(ctx.db);
    assert.deepEqual(
      rows.map((r) => r.object_id),
      [42, 'PKG-9'],
    );
    assert.deepEqual(rows[0]!.request_payload.payload, { via: 'form' });
  });

  test('numbers beyond what a double holds reach the receiver, the database and the API as they were sent', async () => {
    // a 64-bit id, a 20-digit one, an amount of 20 digits; the same digits in a string
    const data =
      '{"order":9007199254740993,"refs":[12345678901234567890,-9223372036854775807],' +
      '"amount":1234567.1234567890123,"note":"12345678901234567890","small":42}';
    const hook = await ctx.createWebhook({ target_url: ctx.receiver.url('/pub/long-numbers') });
    const res = await ctx.api({
      method: 'POST',
      url: PUBLISH,
      headers: { 'content-type': 'application/json' },
      payload: `{"hook":${String(hook.id)},"instance":{"pk":9223372036854775807,"model":"package","data":${data}}}`,
    });
    assert.equal(res.statusCode, 202, res.body);
    assert.equal(await ctx.worker.runOnce(), 1);
    const [got] = requestsTo('/pub/long-numbers');
    assert.ok(got!.body.endsWith(`"payload":${data}}`), got!.body);
    const { rows } = await ctx.db.query<{ object_id: string; payload: string }>(
      `select e.object_id::text as object_id, p.request_payload::text as payload
       from hook_events e join hook_event_payloads p on p.hook_event_id = e.id`,
    );
    assert.equal(rows[0]!.object_id, '9223372036854775807');
    assert.equal(rows[0]!.payload, got!.body);
    // the API's answers write them back as they were: the list, the event, the filter
    const listed = await ctx.api({
      method: 'GET',
      url: '/api/v1/oms/oms_hook_events/?object_id=9223372036854775807',
    });
    assert.equal(listed.statusCode, 200);
    assert.equal(listed.json().count, 1);
    assert.ok(listed.body.includes(`"payload":${data}}`), listed.body);
    assert.ok(listed.body.includes('"object_id":9223372036854775807,'), listed.body);
    const id = listed.json().results[0].id as number;
    const shown = await ctx.api({ method: 'GET', url: `/api/v1/oms/oms_hook_events/${id}/` });
    assert.ok(shown.body.includes(`"payload":${data}}`), shown.body);
    // a hook id of 20 digits is read as a number still, as before: no such webhook
    const far = await ctx.api({
      method: 'POST',
      url: PUBLISH,
      headers: { 'content-type': 'application/json' },
      payload: `{"hook":12345678901234567890,"instance":{"pk":1,"model":"package","data":{}}}`,
    });
    assert.equal(far.statusCode, 400, far.body);
    assert.ok(Array.isArray(far.json().hook), far.body);
  });

  test('a form post and a source URL keep long numbers exact too', async () => {
    source.respond((r) =>
      r.path === '/objects/12345678901234567890'
        ? {
            status: 200,
            headers: { 'content-type': 'application/json' },
            body: '{"id":12345678901234567890,"weight":0.1234567890123456789}',
          }
        : { status: 404 },
    );
    await setSource(source.url('/objects/{pk}'));
    const hook = await ctx.createWebhook({
      target_url: ctx.receiver.url('/pub/long-numbers-form'),
      event_type: '*',
    });
    const form = await ctx.api({
      method: 'POST',
      url: PUBLISH,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: `hook=${String(hook.id)}&event_type=package.created&instance[pk]=98765432109876543210&instance[model]=package&instance[data]=${encodeURIComponent('{"n":98765432109876543210}')}`,
    });
    assert.equal(form.statusCode, 202, form.body);
    const emitted = await emit('package.created', { pk: '12345678901234567890', model: 'package' });
    assert.equal(emitted.statusCode, 202, emitted.body);
    assert.equal(await ctx.worker.runOnce(), 2);
    const bodies = requestsTo('/pub/long-numbers-form').map((r) => r.body);
    assert.ok(
      bodies.some((b) => b.endsWith('"payload":{"n":98765432109876543210}}')),
      bodies.join('\n'),
    );
    assert.ok(
      bodies.some((b) =>
        b.endsWith('"payload":{"id":12345678901234567890,"weight":0.1234567890123456789}}'),
      ),
      bodies.join('\n'),
    );
    const { rows } = await ctx.db.query<{ object_id: string }>(
      'select e.object_id::text as object_id from hook_events e order by e.id',
    );
    // the form's all-digit pk is the integer, the emit's string pk a string
    assert.deepEqual(
      rows.map((r) => r.object_id),
      ['98765432109876543210', '"12345678901234567890"'],
    );
  });

  test('a pk that is neither an integer nor a string is refused', async () => {
    const hook = await ctx.createWebhook({ target_url: ctx.receiver.url('/pub/bad-pk') });
    for (const pk of [{}, [1], '']) {
      const res = await publishRaw({ hook: hook.id, instance: { pk, model: 'package', data: {} } });
      assert.equal(res.statusCode, 400, JSON.stringify(pk));
    }
    assert.deepEqual(await allEvents(ctx.db), []);
  });

  test('an unknown model is refused', async () => {
    const hook = await ctx.createWebhook({ target_url: ctx.receiver.url('/pub/unknown') });
    const res = await publishRaw({
      hook: hook.id,
      instance: { pk: 1, model: 'spaceship', data: {} },
    });
    assert.equal(res.statusCode, 400);
    assert.deepEqual(await allEvents(ctx.db), []);
  });

  test('publish is for admins', async () => {
    const hook = await ctx.createWebhook({ target_url: ctx.receiver.url('/pub/admin') }, 'alice');
    const res = await ctx.api({
      method: 'POST',
      url: PUBLISH,
      payload: { hook: hook.id, instance: { pk: 1, model: 'package', data: {} } },
      as: 'alice',
    });
    assert.equal(res.statusCode, 403);
    assert.deepEqual(await allEvents(ctx.db), []);
  });
});
