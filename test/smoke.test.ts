import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createContext, type Context } from './helpers/context.js';

let ctx: Context;
before(async () => {
  ctx = await createContext();
});
after(() => ctx.close());

test('a published event reaches a real receiver and is recorded as delivered', async () => {
  const hook = await ctx.createWebhook();
  assert.equal(await ctx.publish(hook.id as number, { number: 'P1' }), 202);
  assert.equal(await ctx.worker.runOnce(), 1);
  assert.equal(ctx.receiver.requests.length, 1);
  const got = ctx.receiver.requests[0]!;
  assert.deepEqual(JSON.parse(got.body).payload, { number: 'P1' });
  const list = (await ctx.api({ method: 'GET', url: '/api/v1/oms/oms_hook_events/' })).json();
  assert.equal(list.count, 1);
  assert.equal(list.results[0].delivered, true);
  assert.equal(list.results[0].retry_count, 1);
  assert.equal(list.results[0].response_http_status, 200);
  assert.equal(list.results[0].response_content, 'ok');
});
