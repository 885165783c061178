import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { formatDatabaseUrl, parseDatabaseUrl } from '../../src/core/database-url.js';
import { api, cli, startServer } from '../helpers/cli.js';
import { onPostgres } from '../helpers/db.js';
import { freePort } from '../helpers/ports.js';

/** A process's arguments as Linux shows them, the program first. */
const commandLine = (pid: number) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');

describe(
  'the oms-hooks binary on the embedded database',
  { skip: onPostgres && 'runs in the PGlite pass' },
  () => {
    let dir: string;
    before(() => {
      dir = mkdtempSync(join(tmpdir(), 'oms-hooks-cli-'));
    });
    after(() => {
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
      // a young generation the caller chose is left alone (checked below)
      const server = await startServer(
        ['--data-dir', data],
        { NODE_OPTIONS: '--max-semi-space-size=8' },
        port,
      );
      try {
        if (process.platform === 'linux') {
          const command = commandLine(server.child.pid!);
          assert.ok(
            !command.some((arg) => arg.startsWith('--max-semi-space-size')),
            command.join(' '),
          );
        }
        assert.equal((await api(port, key, 'GET', '/api/v1/oms/webhooks/')).status, 200);
        assert.equal((await api(port, 'f'.repeat(40), 'GET', '/api/v1/oms/webhooks/')).status, 401);
        // The data directory has users already: no first-start admin token is printed.
        assert.ok(!server.output().includes('shown only this once'));
      } finally {
        assert.equal(await server.stop(), 0);
      }
    });

    test('a second process on a data directory or a port in use stops at once with a clear message', async () => {
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
        // glibc's mmap threshold held, after the caller's tunables, and with a young
        // generation of 4 MB a semi-space for its main thread (bin/oms-hooks).
        if (process.platform === 'linux') {
          // the shell lines end in `exec node`: the process spawned is the service itself
          const pid = server.child.pid!;
          const command = commandLine(pid);
          assert.match(command[0]!, /node$/);
          assert.equal(command[1], '--max-semi-space-size=4');
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
        // Its port taken, a first start says so in a line, and creates no admin whose
        // token it would print while failing, and the next start would not print again.
        const fresh = join(dir, 'port-taken');
        const taken = cli(['serve', '--port', String(port), '--data-dir', fresh]);
        assert.equal(taken.code, 1, taken.stderr);
        assert.match(taken.stderr, /^oms-hooks: listen EADDRINUSE: address already in use .*\n$/);
        assert.doesNotMatch(taken.stdout, /shown only this once/);
        const tokens = cli(['token', 'list', '--data-dir', fresh]);
        assert.equal(tokens.code, 0, tokens.stderr);
        assert.equal(tokens.stdout, '');
        // The running server is unharmed.
        assert.equal((await fetch(`http://127.0.0.1:${port}/healthz`)).status, 200);
      } finally {
        assert.equal(await server.stop(), 0);
      }
      // Once it has stopped, the directory is free again.
      const res = cli(['token', 'create', '--username', 'x', '--data-dir', data]);
      assert.equal(res.code, 0, res.stderr);
    });

    test('bad configuration is refused with a message and exit code 2', () => {
      const res = cli(['serve', '--port', 'eighty', '--data-dir', join(dir, 'bad')]);
      assert.equal(res.code, 2);
      assert.match(res.stderr, /PORT \/ --port: expected a non-negative integer/);
      const unknown = cli(['frobnicate', '--data-dir', join(dir, 'bad')]);
      assert.equal(unknown.code, 2);
      assert.match(unknown.stderr, /unknown command "frobnicate"/);
    });

    test('a PostgreSQL that cannot be reached is said in a line, with exit code 1', () => {
      const res = cli(['migrate'], { DATABASE_URL: 'postgres://oms@127.0.0.1:1/oms' });
      assert.equal(res.code, 1);
      assert.equal(res.stderr, 'oms-hooks: connect ECONNREFUSED 127.0.0.1:1\n');
    });
  },
);

test(
  'a database that does not exist is said in a line, with exit code 1',
  {
    skip: !onPostgres && 'needs PostgreSQL',
  },
  () => {
    const parsed = parseDatabaseUrl(process.env.DATABASE_URL!)!;
    parsed.url.pathname = '/oms_hooks_no_such_database';
    const res = cli(['migrate'], { DATABASE_URL: formatDatabaseUrl(parsed) });
    assert.equal(res.code, 1);
    assert.equal(res.stderr, 'oms-hooks: database "oms_hooks_no_such_database" does not exist\n');
  },
);
