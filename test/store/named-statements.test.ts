import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Db } from '../../src/store/db.js';
import { until } from '../engine/support.js';
import { testDb } from '../helpers/db.js';

let db: Db;
let drop: () => Promise<void>;

before(async () => {
  ({ db, drop } = await testDb());
});
after(() => drop());

// Values that an array literal or a quoted SQL literal could get wrong.
const awkward = [
  "it's",
  'say "hi"',
  'back\\slash',
  'a,b',
  '{braces}',
  'NULL',
  '',
  ' padded ',
  'tab\there\nnewline',
  'ünïcödé ✓',
];

const SQL = `select $1::text as text, $2::text[] as texts, $3::int[] as ints,
                    $4::bool[] as flags, $5::jsonb as doc, $6::timestamptz[] as times,
                    $7::int as n`;

test('a named statement returns the values it was given, run after run', async () => {
  const params = [
    awkward.join(' | '),
    [...awkward, null],
    [1, null, -3],
    [true, false, null],
    JSON.stringify([{ quote: "it's", nested: { list: [1, 'two'] } }]),
    ['2024-02-19T08:12:18.591206Z', null],
    null,
  ];
  const plain = (await db.query(SQL, params)).rows[0];
  // more runs than PostgreSQL plans for before it settles on a generic plan
  for (let run = 0; run < 7; run++) {
    const named = (await db.query(SQL, params, 'test_roundtrip')).rows[0];
    assert.deepEqual(named, plain);
  }
  assert.equal((plain as { texts: string[] }).texts[5], 'NULL');
  assert.equal((plain as { texts: unknown[] }).texts[10], null);
  if (db.kind === 'pglite') {
    // PGlite is one session: the statement was prepared there once, and its plan kept
    const { rows } = await db.query<{ generic_plans: number }>(
      `select generic_plans::int from pg_prepared_statements where name = 'test_roundtrip'`,
    );
    assert.equal(rows.length, 1);
    assert.ok(rows[0]!.generic_plans > 0);
  }
});

test('inside a transaction a named statement runs, and keeps the transaction', async () => {
  await db.query(`create table named_t (id int primary key, label text)`);
  const insert = `insert into named_t (id, label) values ($1, $2) returning label`;
  await assert.rejects(
    db.transaction(async (tx) => {
      const { rows } = await tx.query<{ label: string }>(insert, [1, "o'clock"], 'test_insert');
      assert.equal(rows[0]!.label, "o'clock");
      throw new Error('roll back');
    }),
    /roll back/,
  );
  assert.equal((await db.query('select * from named_t')).rows.length, 0);
  await db.query(insert, [2, 'kept'], 'test_insert');
  await db.transaction(async (tx) => {
    await tx.query(insert, [3, 'also kept'], 'test_insert');
  });
  assert.deepEqual(
    (await db.query<{ id: number; label: string }>('select * from named_t order by id')).rows,
    [
      { id: 2, label: 'kept' },
      { id: 3, label: 'also kept' },
    ],
  );
});

test('a named statement that fails gives its error and leaves the session as it was', async () => {
  await db.query(`create table named_u (id int primary key)`);
  const insert = `insert into named_u (id) values ($1)`;
  await db.query(insert, [1], 'test_unique');
  const planner = async () =>
    (
      await db.query<{ s: string; b: string }>(
        `select current_setting('enable_seqscan') as s, current_setting('enable_bitmapscan') as b`,
      )
    ).rows[0];
  const before = await planner();
  await assert.rejects(db.query(insert, [1], 'test_unique'), {
    code: '23505',
    constraint: 'named_u_pkey',
  });
  assert.deepEqual(await planner(), before);
  await assert.rejects(
    db.transaction((tx) => tx.query(insert, [1], 'test_unique')),
    { code: '23505' },
  );
  assert.deepEqual(await planner(), before);
  await db.query(insert, [2], 'test_unique');
  assert.deepEqual((await db.query<{ id: number }>('select id from named_u order by id')).rows, [
    { id: 1 },
    { id: 2 },
  ]);
});

test('a named statement carries large values whole, and its NOTIFY reaches listeners', async () => {
  const heard: string[] = [];
  const stop = await db.listen('named_channel', (payload) => heard.push(payload));
  try {
    // 200,000 characters, many of them more than one byte in UTF-8
    const big = 'ünïcödé ✓ '.repeat(20_000);
    const sql = `select length($1::text)::int as n, md5($1::text) as hash,
                        pg_notify('named_channel', $2::text) as notified`;
    for (let run = 0; run < 2; run++) {
      const named = (await db.query(sql, [big, `run ${run}`], 'test_big')).rows[0];
      const plain = (await db.query(sql, [big, 'plain'])).rows[0];
      assert.deepEqual(named, plain);
      assert.equal((named as { n: number }).n, big.length);
    }
    await until('four notifications', () => heard.length >= 4);
    assert.deepEqual(heard.sort(), ['plain', 'plain', 'run 0', 'run 1']);
  } finally {
    await stop();
  }
});
