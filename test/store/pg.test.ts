import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { existsSync } from 'node:fs';
import pg from 'pg';
import { loadConfig } from '../../src/config/config.js';
import { parseDatabaseUrl, withServerOptions } from '../../src/core/database-url.js';
import { openWorkerDb } from '../../src/store/open.js';
import { createPgDb } from '../../src/store/pg.js';
import { dueChannel, notifyDue, webhookChangedChannel } from '../../src/queue/wake.js';
import { ensureUser } from '../../src/store/tokens.js';
import { until } from '../engine/support.js';
import { createTestSchema, onPostgres, testDb } from '../helpers/db.js';
import { insertWebhook } from '../helpers/rows.js';

const skip = !onPostgres && 'needs PostgreSQL';
const url = process.env.DATABASE_URL ?? '';
let schema = '';

before(async () => {
  if (skip) return;
  schema = await createTestSchema(url, 't');
});

after(async () => {
  if (skip) return;
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  await c.query(`drop schema ${schema} cascade`);
  await c.end();
});

/** The named settings as one connection of a fresh pool sees them. */
async function settings(connectionString: string, names: string[], withSchema = false) {
  const db = createPgDb({ connectionString, max: 1, ...(withSchema ? { schema } : {}) });
  try {
    const seen: Record<string, string> = {};
    for (const name of names) {
      const { rows } = await db.query<Record<string, string>>(`show ${name}`);
      seen[name] = Object.values(rows[0]!)[0]!;
    }
    return seen;
  } finally {
    await db.close();
  }
}

const withOptions = (options: string) => withServerOptions(url, options);

test('connections run without JIT, VACUUM paced, in the schema asked for', { skip }, async () => {
  assert.deepEqual(await settings(url, ['jit', 'vacuum_cost_delay', 'search_path'], true), {
    jit: 'off',
    vacuum_cost_delay: '2ms',
    search_path: schema,
  });
});

test("a URL's own options apply as well, and can undo ours", { skip }, async () => {
  assert.deepEqual(
    await settings(withOptions(`-c search_path=${schema} -c statement_timeout=4321`), [
      'jit',
      'search_path',
      'statement_timeout',
    ]),
    { jit: 'off', search_path: schema, statement_timeout: '4321ms' },
  );
  assert.deepEqual(
    await settings(withOptions('-c jit=on -c vacuum_cost_delay=0'), ['jit', 'vacuum_cost_delay']),
    { jit: 'on', vacuum_cost_delay: '0' },
  );
});

test(
  "libpq's socket URL, a user and no host, connects with its options and ours",
  { skip },
  async (t) => {
    const tcp = parseDatabaseUrl(url)!.url;
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    const dirs = (
      await c.query<{ d: string }>("select current_setting('unix_socket_directories') as d")
    ).rows[0]!.d;
    await c.end();
    const dir = dirs.split(',')[0]!.trim();
    if (!dir || !existsSync(`${dir}/.s.PGSQL.${tcp.port || 5432}`)) {
      t.skip(`the server's socket is not on this machine (unix_socket_directories '${dirs}')`);
      return;
    }
    // postgres://user@/db?host=/run/postgresql: what `new URL` refuses, pg reads
    const socketUrl = withServerOptions(
      `postgres://${tcp.username || 'postgres'}@${tcp.pathname}?host=${encodeURIComponent(dir)}&port=${tcp.port || 5432}`,
      '-c statement_timeout=4321',
    );
    assert.match(socketUrl, /^postgres:\/\/[^@/]+@\/[^/?]+\?/);
    assert.equal(loadConfig({ DATABASE_URL: socketUrl }).databaseUrl, socketUrl);
    const db = createPgDb({ connectionString: socketUrl, max: 1, schema });
    try {
      const { rows } = await db.query<Record<string, string>>(
        `select current_setting('jit') as jit, current_setting('search_path') as search_path,
              current_setting('statement_timeout') as timeout,
              (select client_addr is null from pg_stat_activity where pid = pg_backend_pid()) as local`,
      );
      assert.deepEqual(rows[0], {
        jit: 'off',
        search_path: schema,
        timeout: '4321ms',
        local: true,
      });
    } finally {
      await db.close();
    }
  },
);

test('a named statement is prepared once on its connection and runs again', { skip }, async () => {
  const db = createPgDb({ connectionString: url, max: 1, schema });
  try {
    for (const n of [1, 2, 3]) {
      const { rows } = await db.query<{ n: number }>('select $1::int * 2 as n', [n], 'double');
      assert.equal(rows[0]!.n, n * 2);
    }
    const { rows } = await db.query<{ name: string; statement: string }>(
      'select name, statement from pg_prepared_statements',
    );
    assert.deepEqual(rows, [{ name: 'double', statement: 'select $1::int * 2 as n' }]);
  } finally {
    await db.close();
  }
});

test("a worker's connections plan queue reads through indexes only", { skip }, async () => {
  const main = createPgDb({ connectionString: url, max: 1, schema });
  const worker = await openWorkerDb(main, withOptions(`-c search_path=${schema}`));
  try {
    assert.notEqual(worker, main);
    const seen: Record<string, string> = {};
    for (const name of ['enable_bitmapscan', 'enable_seqscan', 'jit', 'search_path']) {
      const { rows } = await worker.query<Record<string, string>>(`show ${name}`);
      seen[name] = Object.values(rows[0]!)[0]!;
    }
    assert.deepEqual(seen, {
      enable_bitmapscan: 'off',
      enable_seqscan: 'off',
      jit: 'off',
      search_path: schema,
    });
    // the API's connections keep every plan
    const { rows } = await main.query<{ enable_bitmapscan: string }>('show enable_bitmapscan');
    assert.equal(rows[0]!.enable_bitmapscan, 'on');
  } finally {
    await worker.close();
    await main.close();
  }
});

test(
  "a killed run's schema (a test's, a probe's) is dropped by a later one",
  { skip },
  async () => {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    const named = (prefix: string, ageMs: number) =>
      `${prefix}_${Math.floor((Date.now() - ageMs) / 1000).toString(36)}_${'ab12'.repeat(3)}`;
    const stale = named('probe', 2 * 60 * 60 * 1000);
    const recent = named('bench', 10 * 60 * 1000);
    const exists = async (name: string) =>
      (await c.query('select 1 from pg_namespace where nspname = $1', [name])).rowCount === 1;
    let made = '';
    try {
      for (const name of [stale, recent])
        await c.query(`create schema ${name}; create table ${name}.left_behind (id int)`);
      made = await createTestSchema(url, 't');
      assert.equal(await exists(stale), false, 'two hours old: dropped');
      assert.equal(await exists(recent), true, 'ten minutes old: a run may still use it');
      assert.match(made, /^t_[0-9a-z]+_[0-9a-f]{12}$/);
    } finally {
      for (const name of [stale, recent, made].filter(Boolean))
        await c.query(`drop schema if exists ${name} cascade`);
      await c.end();
    }
  },
);

test(
  "two schemas on one server do not hear each other's wake-ups or webhook changes",
  { skip },
  async () => {
    const [a, b] = [await testDb(), await testDb()];
    const heard = { a: [] as string[], b: [] as string[] };
    const stops: (() => Promise<void>)[] = [];
    try {
      for (const [name, { db }] of [
        ['a', a],
        ['b', b],
      ] as const) {
        stops.push(await db.listen(await dueChannel(db), (p) => heard[name].push(`due ${p}`)));
        stops.push(
          await db.listen(await webhookChangedChannel(db), (p) => heard[name].push(`changed ${p}`)),
        );
      }
      // in b: a wake-up, and a webhook changed by its trigger
      const hook = await insertWebhook(b.db, (await ensureUser(b.db, 'b', false)).id);
      await notifyDue(b.db);
      await b.db.query('update webhooks set is_active = false where id = $1', [hook]);
      await until('b hears its own', () => heard.b.length === 2);
      assert.deepEqual(heard.b, ['due ', `changed ${hook}`]);
      // a marker through a, after b's: a's listener hears it alone
      await notifyDue(a.db);
      await until('a hears its own', () => heard.a.length > 0);
      assert.deepEqual(heard.a, ['due ']);
    } finally {
      for (const stop of stops) await stop();
      await a.drop();
      await b.drop();
    }
  },
);
