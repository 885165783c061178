import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { isoMicro } from '../../src/core/clock.js';
import { claimBatch, claimForResend, releaseLeases } from '../../src/queue/claim.js';
import { recordAttempts, type AttemptOutcome } from '../../src/queue/record.js';
import { enqueueHookEvents } from '../../src/queue/enqueue.js';
import type { Db } from '../../src/store/db.js';
import { noting, rowsRead, testDb, type Sent } from '../helpers/db.js';
import { insertOtherWebhooks, insertWebhook, newHookEvent, queueDue } from '../helpers/rows.js';

let db: Db;
let drop: () => Promise<void>;
const PLAIN = 300;
const LIMITED_IDLE = 300;
let limited: number;

before(async () => {
  ({ db, drop } = await testDb());
  const { rows } = await db.query<{ id: number }>(
    `insert into users (username, is_admin) values ('limits', true) returning id`,
  );
  // many webhooks without a shared limit and many with one, all idle; one limited webhook
  // with an event due
  await insertOtherWebhooks(db, rows[0]!.id, { count: PLAIN });
  await insertOtherWebhooks(db, rows[0]!.id, {
    count: LIMITED_IDLE,
    from: PLAIN + 1,
    config: { max_concurrency: 2 },
  });
  limited = await insertWebhook(db, rows[0]!.id, { max_concurrency: 2 });
  await db.transaction((tx) =>
    enqueueHookEvents(tx, [newHookEvent(limited, 1)], isoMicro(Date.now() - 60_000)),
  );
  await db.query('analyze webhooks');
});
after(() => drop());

test('the check for webhooks with shared limits reads those with events queued, not every one', async () => {
  const seen = new Map<string, Sent>();
  const claim = { workerId: 'w-limits', now: new Date().toISOString(), leaseMs: 60_000 };
  // the common claim, which says whether a limited webhook is waiting, then the gate's
  // lookup of them, in a transaction, which locks them
  const open = await claimBatch(noting(db, seen), { ...claim, limit: 10, gate: false });
  assert.equal(open.limitedDue, true, 'the limited webhook with an event due');
  const gated = await claimBatch(noting(db, seen), { ...claim, limit: 10 });
  assert.deepEqual(
    gated.events.map((e) => e.webhook.id),
    [limited],
  );
  // as PostgreSQL plans them for a worker's connections, and as PGlite runs named ones
  for (const name of ['oms_claim_open', 'oms_claim_gate']) {
    const sent = seen.get(name);
    assert.ok(sent, `no ${name} statement was sent`);
    for (const settings of [[], ['enable_bitmapscan = off', 'enable_seqscan = off']]) {
      // the one webhook with an event queued, once for the claim and once for the check,
      // none of the ${PLAIN + LIMITED_IDLE} idle ones
      const read = await rowsRead(db, sent, 'webhooks', settings);
      assert.ok(
        read <= 3,
        `${read} webhook rows read by ${name} (${settings.join(', ') || 'defaults'})`,
      );
    }
  }
});

const BACKLOG = 3000;

/**
 * A webhook of a new user `name` with `config`, and BACKLOG events of it queued; `taken`
 * claims through the gate as worker `workerId` and returns the ids of that webhook's
 * events it took, noting the statements sent in `seen`.
 */
async function backlogOf(name: string, config: Record<string, unknown>) {
  const { rows } = await db.query<{ id: number }>(
    `insert into users (username, is_admin) values ($1, true) returning id`,
    [name],
  );
  const hook = await insertWebhook(db, rows[0]!.id, config);
  await queueDue(db, hook, BACKLOG);
  await db.query('analyze hook_event_queue');
  const workerId = `w-${name}`;
  const seen = new Map<string, Sent>();
  const taken = async () =>
    (
      await claimBatch(noting(db, seen), {
        workerId,
        leaseMs: 60_000,
        limit: 10,
        now: isoMicro(Date.now()),
      })
    ).events
      .filter((e) => e.webhook.id === hook)
      .map((e) => e.id);
  return { hook, workerId, seen, taken };
}

/** Records a failed attempt of event `id` by `workerId`, with what comes `next`. */
const recordFailure = (workerId: string, id: number, next: AttemptOutcome['next']) =>
  recordAttempts(db, workerId, [
    {
      id,
      at: isoMicro(Date.now()),
      status: 500,
      content: 'no',
      delivered: false,
      next,
      durationMs: 1,
      error: null,
      worker: workerId,
      deactivate: false,
    },
  ]);

/**
 * Asserts that the `oms_claim` statement noted in `seen` reads fewer than `fewer` rows of
 * `table`, as PostgreSQL plans it and with scans by index forced.
 */
async function assertClaimReads(seen: Map<string, Sent>, table: string, fewer: number) {
  const sent = seen.get('oms_claim');
  assert.ok(sent, 'no oms_claim statement was sent');
  for (const settings of [[], ['enable_bitmapscan = off', 'enable_seqscan = off']]) {
    const read = await rowsRead(db, sent, table, settings);
    assert.ok(read < fewer, `${read} rows of ${table} read (${settings.join(', ') || 'defaults'})`);
  }
}

test('a claim through the gate counts the leases of a limited webhook, not its backlog', async () => {
  const { hook, workerId, seen, taken } = await backlogOf('backlog', { max_concurrency: 3 });
  const first = await taken();
  assert.equal(first.length, 3, 'max_concurrency of them');
  assert.deepEqual(await taken(), [], 'none while three are leased');
  // the three leases, the head of the range the claim would take from, and the scan for
  // webhooks with events queued; the count read all ${BACKLOG} before
  await assertClaimReads(seen, 'hook_event_queue', 80);

  // a lease given back no longer counts; a manual resend's lease does
  assert.equal(await releaseLeases(db, workerId, [first[0]!]), 1);
  const again = await taken();
  assert.equal(again.length, 1, 'the place given back');
  assert.equal(await releaseLeases(db, workerId, again), 1);
  const { rows: queued } = await db.query<{ id: number }>(
    `select hook_event_id as id from hook_event_queue
     where webhook_id = $1 and locked_by is null order by hook_event_id desc limit 1`,
    [hook],
  );
  const resent = await claimForResend(
    db,
    queued[0]!.id,
    { workerId: 'resend-test', now: isoMicro(Date.now()), leaseMs: 60_000 },
    18,
  );
  assert.ok(resent && resent !== 'busy', 'the resend leased the event');
  assert.deepEqual(await taken(), [], "two leases and the resend's");

  // a recorded attempt that will be retried leaves the leases the gate counts
  await recordFailure(workerId, first[1]!, {
    kind: 'retry',
    at: isoMicro(Date.now() + 3_600_000),
  });
  const { rows: flagged } = await db.query<{ id: number }>(
    'select hook_event_id as id from hook_event_queue where webhook_id = $1 and gated order by 1',
    [hook],
  );
  assert.ok(
    !flagged.some((r) => r.id === first[1]),
    'the event waiting for its retry is out of the index',
  );
  assert.equal((await taken()).length, 1, 'its place came free');
});

test("an ordered webhook's claim looks up its oldest queued event, not its backlog", async () => {
  const { hook, workerId, seen, taken } = await backlogOf('ordered', { ordered: true });
  const { rows: ids } = await db.query<{ id: number }>(
    'select id from hook_events where webhook_id = $1 order by id limit 2',
    [hook],
  );
  const [oldest, second] = ids.map((r) => Number(r.id));
  assert.deepEqual(await taken(), [oldest], 'the oldest event alone');
  assert.deepEqual(await taken(), [], 'nothing while it is leased');
  // due again at once, yet after every other event of the webhook
  await recordFailure(workerId, oldest!, { kind: 'retry', at: isoMicro(Date.now() - 1_000) });
  // its retry is due after the 2,999 others, and it still goes first
  assert.deepEqual(await taken(), [oldest], 'the oldest again, for its retry');
  // the lease, the oldest event's row and the scan for webhooks with events queued; a
  // scan of the webhook's due rows for its oldest read all ${BACKLOG}
  await assertClaimReads(seen, 'hook_event_queue', 80);
  await assertClaimReads(seen, 'hook_events', 20);
  // given up after its last retry, it leaves the queue: the next one in id order goes
  await recordFailure(workerId, oldest!, { kind: 'done' });
  assert.deepEqual(await taken(), [second], 'the next event once the oldest is given up');
});
