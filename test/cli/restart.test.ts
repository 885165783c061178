import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { api, startServer } from '../helpers/cli.js';
import { onPostgres } from '../helpers/db.js';
import { Receiver } from '../helpers/receiver.js';
import { freePort } from '../helpers/ports.js';

/**
 * The real binary's first start and a restart on the embedded database; apart from
 * process.test.ts because each first start on PGlite takes seconds (12-16 s in a slow
 * hour), and a file's tests together must finish within the test timeout.
 */
describe(
  'the oms-hooks binary restarted on its data directory',
  { skip: onPostgres && 'runs in the PGlite pass' },
  () => {
    let dir: string;
    let receiver: Receiver;
    before(async () => {
      dir = mkdtempSync(join(tmpdir(), 'oms-hooks-restart-'));
      receiver = await Receiver.start();
    });
    after(async () => {
      await receiver.close();
      rmSync(dir, { recursive: true, force: true });
    });

    test('first start creates an admin and prints its token; accepted events survive a restart', async () => {
      const data = join(dir, 'restart');
      const port = await freePort();
      // API only: the event is accepted and stored, but nothing delivers it yet.
      const apiOnly = await startServer(
        ['--data-dir', data, '--role', 'api', '--allow-private-targets'],
        {},
        port,
      );
      let token: string;
      try {
        const match = /shown only this once:\s+([0-9a-f]{40})/.exec(apiOnly.output());
        assert.ok(match, `no admin token printed:\n${apiOnly.output()}`);
        token = match[1]!;
        const hook = await api(port, token, 'POST', '/api/v1/oms/webhooks/', {
          target_url: receiver.url('/restart'),
          event_type: 'package.created',
        });
        assert.equal(hook.status, 201);
        const published = await api(
          port,
          token,
          'POST',
          '/api/v1/oms/oms_hook_events/publish-event/',
          {
            hook: (hook.body as { id: number }).id,
            instance: { pk: 7, model: 'package', data: { number: 'R7' } },
          },
        );
        assert.equal(published.status, 202);
      } finally {
        assert.equal(await apiOnly.stop(), 0);
      }
      assert.equal(receiver.requests.length, 0);

      const full = await startServer(['--data-dir', data, '--allow-private-targets'], {}, port);
      try {
        await receiver.waitFor(1, 30_000);
        assert.equal(JSON.parse(receiver.requests[0]!.body).payload.number, 'R7');
        // Recorded as delivered (the receiver answered 200).
        for (let i = 0; i < 50; i++) {
          const list = await api(port, token, 'GET', '/api/v1/oms/oms_hook_events/?delivered=true');
          if ((list.body as { count: number }).count === 1) break;
          await new Promise((r) => setTimeout(r, 100));
        }
        const list = await api(port, token, 'GET', '/api/v1/oms/oms_hook_events/');
        const [event] = (list.body as { results: { delivered: boolean; retry_count: number }[] })
          .results;
        assert.equal(event?.delivered, true);
        assert.equal(event?.retry_count, 1);
      } finally {
        assert.equal(await full.stop(), 0);
      }
    });
  },
);
