import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createContext, type Context } from '../helpers/context.js';

let ctx: Context;
before(async () => {
  ctx = await createContext({ ALLOW_PRIVATE_TARGETS: '0', ALLOWED_TARGET_CIDRS: '10.1.0.0/16' });
});
after(() => ctx.close());

const create = (target_url: string) =>
  ctx.api({
    method: 'POST',
    url: '/api/v1/oms/webhooks/',
    payload: { target_url, event_type: 'package.created' },
  });

test('a private address inside ALLOWED_TARGET_CIDRS is accepted when a webhook is saved', async () => {
  const res = await create('http://10.1.2.3/hooks');
  assert.equal(res.statusCode, 201, res.body);
  const { rows } = await ctx.db.query<{ target_url: string }>('select target_url from webhooks');
  assert.deepEqual(
    rows.map((r) => r.target_url),
    ['http://10.1.2.3/hooks'],
  );
});

test('private addresses outside the allowed ranges, and local names, are still refused', async () => {
  for (const url of [
    'http://10.2.0.1/',
    'http://127.0.0.1/',
    'http://localhost/',
    'http://169.254.169.254/',
  ]) {
    const res = await create(url);
    assert.equal(res.statusCode, 400, url);
    assert.ok(Array.isArray(res.json().target_url), url);
  }
});
