import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isoMicro } from '../../src/core/clock.js';
import { claimBatch } from '../../src/queue/claim.js';
import { enqueueCommitted } from '../../src/queue/enqueue.js';
import { recordAttempts } from '../../src/queue/record.js';
import { migrate } from '../../src/store/migrate.js';
import { ensureUser } from '../../src/store/tokens.js';
import { watchingHostFlushes, withDataDir, withPglite } from '../helpers/pglite-dir.js';
import { insertWebhook, newHookEvent } from '../helpers/rows.js';

/**
 * A claim writes only a lease, which a crash may lose without harm (the event is due
 * again), so it does not wait for a flush of the WAL; the enqueue before it and the
 * record after it do. Counted as real host flushes on PGlite on a data directory, where
 * every flush holds the database's only thread.
 */
test('a claim commits without a flush; the enqueue and the record flush', () =>
  withDataDir((dir) =>
    withPglite(dir, async (db) => {
      await migrate(db);
      const user = await ensureUser(db, 'claim-commit', true);
      const webhookId = await insertWebhook(db, user.id);
      const now = new Date('2026-01-01T00:00:00Z').getTime();
      await watchingHostFlushes(async (flushes) => {
        const events = [1, 2, 3].map((n) => newHookEvent(webhookId, n));
        await enqueueCommitted(db, events, isoMicro(now));
        const enqueued = flushes.mock.callCount();
        assert.ok(enqueued >= 1, `the enqueue made ${enqueued} host flushes`);

        const claim = (gate: boolean, limit: number) =>
          claimBatch(db, {
            workerId: 'w-commit',
            now: isoMicro(now + 1000),
            leaseMs: 30_000,
            limit,
            gate,
          });
        // one claim of each kind: a single statement, and a transaction through the gate
        const claimed = [...(await claim(false, 2)).events, ...(await claim(true, 10)).events];
        assert.equal(claimed.length, 3);
        assert.equal(flushes.mock.callCount(), enqueued, 'no host flush for the claims');
        const { rows: leased } = await db.query<{ n: number }>(
          `select count(*)::int as n from hook_event_queue where locked_by = 'w-commit'`,
        );
        assert.equal(leased[0]!.n, 3, 'the leases are written all the same');

        await recordAttempts(
          db,
          'w-commit',
          claimed.map((e) => ({
            id: e.id,
            at: isoMicro(now + 2000),
            status: 200,
            content: 'ok',
            delivered: true,
            next: { kind: 'done' },
            durationMs: 3,
            error: null,
            worker: 'w-commit',
            deactivate: false,
          })),
        );
        assert.ok(flushes.mock.callCount() > enqueued, 'the record flushes');
      });
      // the claim's own setting ended with its transaction
      const { rows } = await db.query<{ mode: string }>(
        `select current_setting('synchronous_commit') as mode`,
      );
      assert.equal(rows[0]!.mode, 'on');
    }),
  ));
