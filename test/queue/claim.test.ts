import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { isoMicro } from '../../src/core/clock.js';
import { claimBatch } from '../../src/queue/claim.js';
import { createContext, type Context } from '../helpers/context.js';

let ctx: Context;
before(async () => {
  ctx = await createContext();
});
after(() => ctx.close());

const openClaim = () =>
  claimBatch(ctx.db, {
    workerId: 'w-claim',
    now: isoMicro(ctx.clock.now()),
    leaseMs: 30_000,
    limit: 10,
    gate: false,
  });

test('a claim that takes nothing still says whether a webhook with a shared limit is waiting', async () => {
  const nothing = await openClaim();
  assert.deepEqual(nothing, { events: [], limitedDue: false }, 'an empty queue: no gate needed');

  const limited = (await ctx.createWebhook({ config: { max_concurrency: 2 } })).id as number;
  assert.equal(await ctx.publish(limited), 202);
  // the open claim serves only webhooks without shared limits: it takes nothing, and says
  // that the next claim must go through the gate
  assert.deepEqual(await openClaim(), { events: [], limitedDue: true });

  const gated = await claimBatch(ctx.db, {
    workerId: 'w-claim',
    now: isoMicro(ctx.clock.now()),
    leaseMs: 30_000,
    limit: 10,
  });
  assert.deepEqual(
    gated.events.map((e) => e.webhook.id),
    [limited],
  );
  assert.deepEqual(await openClaim(), { events: [], limitedDue: false }, 'nothing waits now');
});
