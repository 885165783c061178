import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { isoMicro } from '../../src/core/clock.js';
import { claimBatch } from '../../src/queue/claim.js';
import { createContext, type Context } from '../helpers/context.js';
import { storedBodies } from '../helpers/rows.js';

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

test('events of several webhooks claimed at once each carry their own webhook, one object per webhook', async () => {
  const first = (await ctx.createWebhook({ target_url: ctx.receiver.url('/first') })).id as number;
  const second = (
    await ctx.createWebhook({
      target_url: ctx.receiver.url('/second'),
      additional_headers: { 'X-Which': 'second' },
      config: { timeout: 7 },
    })
  ).id as number;
  // the claim through the gate serves a limited webhook beside the others, and returns
  // its events the same way
  const limited = (await ctx.createWebhook({ config: { max_concurrency: 3 } })).id as number;

  for (const gate of [true, false]) {
    const hooks = gate ? [first, second, limited] : [first, second];
    for (const hook of [...hooks, ...hooks]) assert.equal(await ctx.publish(hook), 202);
    const { events } = await claimBatch(ctx.db, {
      workerId: `w-share-${gate}`,
      now: isoMicro(ctx.clock.now()),
      leaseMs: 30_000,
      limit: 10,
      gate,
    });
    assert.deepEqual(
      events.map((e) => e.webhook.id).sort(),
      [...hooks, ...hooks].sort(),
      `gate ${gate}: each webhook's two events`,
    );
    assert.deepEqual(
      events.map((e) => e.id),
      events.map((e) => e.id).sort((a, b) => a - b),
      'in id order',
    );
    for (const hook of hooks) {
      const mine = events.filter((e) => e.webhook.id === hook);
      assert.equal(mine[0]!.webhook, mine[1]!.webhook, `webhook ${hook}: one settings object`);
      const { rows } = await ctx.db.query<{
        target_url: string;
        headers: Record<string, string>;
        config: Record<string, unknown>;
      }>('select target_url, additional_headers as headers, config from webhooks where id = $1', [
        hook,
      ]);
      assert.equal(mine[0]!.webhook.targetUrl, rows[0]!.target_url);
      assert.deepEqual(mine[0]!.webhook.additionalHeaders, rows[0]!.headers);
      assert.deepEqual(mine[0]!.webhook.config, rows[0]!.config);
      assert.match(mine[0]!.webhook.secretKey, /^whsec_/);
      const bodies = await storedBodies(
        ctx.db,
        mine.map((e) => e.id),
      );
      assert.deepEqual(
        mine.map((e) => e.body),
        mine.map((e) => bodies.get(e.id)),
        'each event carries its own stored body',
      );
    }
    assert.deepEqual(events.find((e) => e.webhook.id === second)!.webhook.additionalHeaders, {
      'X-Which': 'second',
    });
  }
});
