import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { Db } from '../../src/store/db.js';
import {
  checkpointIfDue,
  createPgliteDb,
  sinceCheckpoint,
  type CheckpointReport,
} from '../../src/store/pglite.js';
import { until } from '../engine/support.js';
import {
  CHECKPOINT_DENIED,
  CHECKPOINT_EVERY_TICK,
  denyCheckpoints,
  watchingHostFlushes,
  withDataDir,
  withPglite,
} from '../helpers/pglite-dir.js';

/**
 * On a data directory, a commit of the embedded database must reach the disk before it
 * counts, as on PostgreSQL: PGlite's own defaults leave it in the OS's page cache.
 */
const settings = async (db: Db) =>
  (
    await db.query<{ fsync: string; method: string }>(
      `select current_setting('fsync') as fsync, current_setting('wal_sync_method') as method`,
    )
  ).rows[0];

test('on a data directory each commit flushes the WAL on the host, and the rows stay', () =>
  withDataDir(async (dir) => {
    await withPglite(dir, async (db) => {
      assert.deepEqual(await settings(db), { fsync: 'on', method: 'fsync' });
      await db.exec('create table durable_t (id int primary key)');
      await watchingHostFlushes(async (flushes) => {
        for (let id = 1; id <= 3; id++) await db.query('insert into durable_t values ($1)', [id]);
        const calls = flushes.mock.calls;
        assert.ok(calls.length >= 3, `${calls.length} host flushes for 3 commits`);
        for (const call of calls) assert.equal(typeof call.arguments[0], 'number');
      });
    });
    await withPglite(dir, async (again) => {
      const { rows } = await again.query<{ n: number }>('select count(*)::int as n from durable_t');
      assert.equal(rows[0]!.n, 3);
    });
  }));

test('on a data directory a new WAL segment gets its blocks as it is written, not zeros first', () =>
  withDataDir(async (dir) => {
    await withPglite(dir, async (db) => {
      // the segment PostgreSQL is writing, by the name it gives it in pg_wal
      const writing = async () =>
        (
          await db.query<{ file: string }>(
            'select pg_walfile_name(pg_current_wal_insert_lsn()) as file',
          )
        ).rows[0]!.file;
      await db.exec('create table segment_t (id int)');
      const before = await writing();
      await db.query('select pg_switch_wal()');
      await db.query('insert into segment_t values (1)');
      const made = await writing();
      assert.notEqual(made, before);
      // a whole segment by its size, and (on a file system with holes) a few blocks on disk
      const { size, blocks } = statSync(join(dir, 'pg_wal', made));
      assert.equal(size, 16 * 1024 * 1024);
      assert.ok(blocks * 512 < 1024 * 1024, `${blocks * 512} bytes allocated`);
    });
  }));

test('in memory (the tests database) nothing is flushed: there is no disk to reach', () =>
  withPglite(undefined, (db) =>
    watchingHostFlushes(async (flushes) => {
      assert.equal((await settings(db))!.fsync, 'off');
      await db.exec('create table memory_t (id int); insert into memory_t values (1)');
      assert.equal(flushes.mock.callCount(), 0);
    }),
  ));

test('on a data directory the WAL is checkpointed once enough is written, as a server would', () =>
  withDataDir(async (dir) => {
    // the service's own policy is left off here, so that only the calls below checkpoint
    const db = await createPgliteDb(dir, false);
    try {
      const policy = { walBytes: 8 * 1024 * 1024, maxAgeMs: 3_600_000, minWalBytes: 0, everyMs: 1 };
      await db.exec('create table wal_t (id int, pad text)');
      assert.equal(await checkpointIfDue(db, policy), false, 'nothing written yet');
      // about 12 MB of WAL: past the policy's 8 MB
      await db.query(
        `insert into wal_t select g, repeat('w', 1000) from generate_series(1, 10000) g`,
      );
      const before = (await sinceCheckpoint(db)).walBytes;
      assert.ok(before >= 8 * 1024 * 1024, `${before} bytes since the checkpoint`);
      assert.equal(await checkpointIfDue(db, policy), true);
      const after = (await sinceCheckpoint(db)).walBytes;
      assert.ok(after < 1024 * 1024, `${after} bytes since the checkpoint`);
      assert.equal(await checkpointIfDue(db, policy), false, 'a second call right after');
      // a checkpoint long enough ago calls for the next, given WAL written since
      const aged = { ...policy, walBytes: Number.MAX_SAFE_INTEGER, maxAgeMs: 0, minWalBytes: 1 };
      await db.query('insert into wal_t values (0, $1)', ['x']);
      assert.equal(await checkpointIfDue(db, aged), true);
    } finally {
      await db.close();
    }
    // what the checkpoints wrote is what a restart reads
    await withPglite(dir, async (again) => {
      const { rows } = await again.query<{ n: number }>('select count(*)::int as n from wal_t');
      assert.equal(rows[0]!.n, 10_001);
    });
  }));

/** Where the last checkpoint's redo begins in the WAL: each CHECKPOINT moves it on. */
const checkpointRedo = async (db: Db) =>
  (
    await db.query<{ at: number }>(
      `select (redo_lsn - '0/0')::float8 as at from pg_control_checkpoint()`,
    )
  ).rows[0]!.at;

test('failed checkpoints are reported once, then their recovery with how many failed', () =>
  withDataDir(async (dir) => {
    const reports: CheckpointReport[] = [];
    const db = await createPgliteDb(dir, CHECKPOINT_EVERY_TICK, (r) => reports.push(r));
    try {
      await denyCheckpoints(db);
      await until('a failure report', () => reports.length > 0, 5_000);
      const first = reports[0]!;
      assert.ok('failed' in first);
      assert.equal(first.failed.message, CHECKPOINT_DENIED);
      assert.equal(first.failures, 1);
      const lastGood = await checkpointRedo(db);
      // ten more ticks fail, and none is reported: the next report waits a minute
      await new Promise((resolve) => setTimeout(resolve, 10 * CHECKPOINT_EVERY_TICK.everyMs));
      assert.equal(reports.length, 1);
      await db.exec('reset role');
      await until('a recovery report', () => reports.length > 1, 5_000);
      const recovered = reports[1]!;
      assert.ok('recovered' in recovered);
      assert.ok(recovered.recovered >= 5, `${recovered.recovered} failures counted`);
      // the checkpoint that ended the run of failures is on record
      assert.ok((await checkpointRedo(db)) > lastGood);
    } finally {
      await db.close();
    }
  }));
