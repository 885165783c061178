import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, DEFAULTS, loadConfig, parseFlags } from '../../src/config/config.js';
import { withServerOptions } from '../../src/core/database-url.js';

test('defaults apply when nothing is set, and the result is frozen', () => {
  const config = loadConfig({});
  assert.equal(config.port, 8000);
  assert.equal(config.host, '127.0.0.1');
  assert.equal(config.databaseUrl, undefined);
  assert.equal(config.dataDir, './data');
  assert.equal(config.defaultMaxRetries, 18);
  assert.equal(config.requestTimeoutMs, 10_000);
  assert.equal(config.allowPrivateTargets, false);
  assert.ok(Object.isFrozen(config));
  assert.deepEqual({ ...config }, { ...DEFAULTS });
});

test('environment overrides defaults and flags override the environment', () => {
  const env = { PORT: '9001', ALLOW_PRIVATE_TARGETS: '1', DATABASE_URL: 'postgres://u@h/db' };
  const { values } = parseFlags(['serve', '--port', '9002', '--data-dir', '/tmp/x']);
  const config = loadConfig(env, values);
  assert.equal(config.port, 9002);
  assert.equal(config.dataDir, '/tmp/x');
  assert.equal(config.allowPrivateTargets, true);
  assert.equal(config.databaseUrl, 'postgres://u@h/db');
  assert.equal(loadConfig({ ALLOW_PRIVATE_TARGETS: 'off' }).allowPrivateTargets, false);
  assert.equal(
    loadConfig({}, parseFlags(['--allow-private-targets']).values).allowPrivateTargets,
    true,
  );
});

test('an empty DATABASE_URL means the embedded database', () => {
  assert.equal(loadConfig({ DATABASE_URL: '' }).databaseUrl, undefined);
});

test('DATABASE_URL takes what pg connects with: a URL, one with no host, a socket directory', () => {
  for (const v of [
    'postgres://u:p@db.example:6543/oms?sslmode=require',
    // libpq's way to a Unix socket, which `new URL` alone refuses
    'postgres://u@/oms?host=/run/postgresql',
    'postgresql:///oms?host=%2Frun%2Fpostgresql&user=u',
    '/run/postgresql oms',
  ])
    assert.equal(loadConfig({ DATABASE_URL: v }).databaseUrl, v);
  assert.throws(
    () => loadConfig({ DATABASE_URL: 'u@/oms' }),
    /DATABASE_URL.*: not a PostgreSQL URL/,
  );
});

test('server options join a URL with no host, which stays without one', () => {
  assert.equal(
    withServerOptions('postgres://u@/oms?host=/run/postgresql', '-c search_path=s1'),
    'postgres://u@/oms?host=%2Frun%2Fpostgresql&options=-c+search_path%3Ds1',
  );
  assert.equal(
    withServerOptions('postgres://u@h/oms?options=-c%20jit%3Don', '-c search_path=s1'),
    'postgres://u@h/oms?options=-c+jit%3Don+-c+search_path%3Ds1',
  );
  assert.throws(() => withServerOptions('/run/postgresql oms', '-c jit=on'), /socket directory/);
});

test('bad values are refused with the setting named', () => {
  assert.throws(
    () => loadConfig({ PORT: 'http' }),
    (e: Error) => e instanceof ConfigError && /PORT/.test(e.message),
  );
  assert.throws(() => loadConfig({ PORT: '70000' }), /at most 65535/);
  assert.throws(() => loadConfig({ ROLE: 'boss' }), /ROLE/);
  assert.throws(() => loadConfig({ ALLOW_PRIVATE_TARGETS: 'maybe' }), /ALLOW_PRIVATE_TARGETS/);
  assert.throws(() => loadConfig({ DATABASE_URL: 'not a url' }), /DATABASE_URL/);
  // A lease shorter than a request would let a second worker take an event mid-attempt.
  assert.throws(() => loadConfig({ LEASE_MS: '5000', REQUEST_TIMEOUT_MS: '10000' }), /LEASE_MS/);
  assert.throws(() => parseFlags(['--no-such-flag']), /Unknown option/);
});
