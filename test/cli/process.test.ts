import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { onPostgres } from '../helpers/db.js';
import { Receiver } from '../helpers/receiver.js';
import { freePort } from '../helpers/ports.js';

/**
 * The real binary, as a user runs it, on the embedded database: these are about PGlite
 * data directories and process lifecycles, so they run once, in the PGlite pass.
 */
const BIN = new URL('../../bin/oms-hooks', import.meta.url).pathname;

function cli(args: string[], env: Record<string, string> = {}) {
  const res = spawnSync(BIN, args, {
    encoding: 'utf8',
    env: { ...process.env, DATABASE_URL: '', ...env },
    timeout: 60_000,
  });
  return { code: res.status, stdout: res.stdout, stderr: res.stderr };
}

interface Server {
  child: ChildProcess;
  output: () => string;
  stop: () => Promise<number | null>;
}

async function startServer(
  args: string[],
  env: Record<string, string>,
  port: number,
): Promise<Server> {
  const child = spawn(BIN, ['serve', '--port', String(port), ...args], {
    env: { ...process.env, DATABASE_URL: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  // Ready when /healthz answers; fail fast if the process dies first.
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`serve exited early:\n${out}`);
    try {
      const res = await fetch(`http://127.0.0.1:${port}/healthz`);
      if (res.ok) break;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline) throw new Error(`serve did not start:\n${out}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    child,
    output: () => out,
    stop: async () => {
      child.kill('SIGTERM');
      return exited;
    },
  };
}

const api = async (port: number, token: string, method: string, path: string, body?: unknown) => {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, {
    method,
    headers: { authorization: `Token ${token}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
};

describe(
  'the oms-hooks binary on the embedded database',
  { skip: onPostgres && 'runs in the PGlite pass' },
  () => {
    let dir: string;
    let receiver: Receiver;
    before(async () => {
      dir = mkdtempSync(join(tmpdir(), 'oms-hooks-cli-'));
      receiver = await Receiver.start();
    });
    after(async () => {
      await receiver.close();
      rmSync(dir, { recursive: true, force: true });
    });

    test('token create prints the key alone on the last line, and it authenticates', async () => {
      const data = join(dir, 'tokens');
      const res = cli(['token', 'create', '--username', 'ops', '--admin', '--data-dir', data]);
      assert.equal(res.code, 0, res.stderr);
      const key = res.stdout.trimEnd().split('\n').at(-1)!;
      assert.match(key, /^[0-9a-f]{40}$/);
      const list = cli(['token', 'list', '--data-dir', data]);
      assert.equal(list.code, 0, list.stderr);
      assert.match(list.stdout, /ops \(admin\)/);
      assert.ok(!list.stdout.includes(key), 'token list must not print keys');

      const port = await freePort();
      const server = await startServer(['--data-dir', data], {}, port);
      try {
        assert.equal((await api(port, key, 'GET', '/api/v1/oms/webhooks/')).status, 200);
        assert.equal((await api(port, 'f'.repeat(40), 'GET', '/api/v1/oms/webhooks/')).status, 401);
        // The data directory has users already: no first-start admin token is printed.
        assert.ok(!server.output().includes('shown only this once'));
      } finally {
        assert.equal(await server.stop(), 0);
      }
    });

    test('a second process on a data directory in use stops at once with a clear message', async () => {
      const data = join(dir, 'locked');
      const port = await freePort();
      const server = await startServer(
        ['--data-dir', data],
        { GLIBC_TUNABLES: 'glibc.malloc.arena_max=8' },
        port,
      );
      try {
        // Checked on this server rather than one of its own, which would cost this file
        // another first start: started as a command on PGlite, the service runs with
        // glibc's mmap threshold held, after the caller's tunables (bin/oms-hooks).
        if (process.platform === 'linux') {
          // the shell lines end in `exec node`: the process spawned is the service itself
          const pid = server.child.pid!;
          const command = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
          assert.match(command[0]!, /node$/);
          // glibc (2.36) ends each tunable's value in place as it reads them, so the
          // variable shows in /proc with a NUL where the shell wrote a colon
          const environ = readFileSync(`/proc/${pid}/environ`, 'latin1');
          assert.match(
            environ,
            /(^|\0)GLIBC_TUNABLES=glibc\.malloc\.arena_max=8[:\0]glibc\.malloc\.mmap_threshold=131072\0/,
            JSON.stringify(environ.match(/GLIBC_TUNABLES=[^]{0,80}/)?.[0]),
          );
        }
        const res = cli(['token', 'create', '--username', 'x', '--data-dir', data]);
        assert.equal(res.code, 2);
        assert.match(res.stderr, /in use by another oms-hooks process \(pid \d+\)/);
        // The running server is unharmed.
        assert.equal((await fetch(`http://127.0.0.1:${port}/healthz`)).status, 200);
      } finally {
        assert.equal(await server.stop(), 0);
      }
      // Once it has stopped, the directory is free again.
      const res = cli(['token', 'create', '--username', 'x', '--data-dir', data]);
      assert.equal(res.code, 0, res.stderr);
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
            hook: hook.body.id,
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
          if (list.body.count === 1) break;
          await new Promise((r) => setTimeout(r, 100));
        }
        const list = await api(port, token, 'GET', '/api/v1/oms/oms_hook_events/');
        assert.equal(list.body.results[0].delivered, true);
        assert.equal(list.body.results[0].retry_count, 1);
      } finally {
        assert.equal(await full.stop(), 0);
      }
    });

    test('bad configuration is refused with a message and exit code 2', () => {
      const res = cli(['serve', '--port', 'eighty', '--data-dir', join(dir, 'bad')]);
      assert.equal(res.code, 2);
      assert.match(res.stderr, /PORT \/ --port: expected a non-negative integer/);
      const unknown = cli(['frobnicate', '--data-dir', join(dir, 'bad')]);
      assert.equal(unknown.code, 2);
      assert.match(unknown.stderr, /unknown command "frobnicate"/);
    });
  },
);
