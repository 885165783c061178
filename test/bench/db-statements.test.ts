import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Worker } from 'node:worker_threads';

const preload = new URL('../../bench/db-statements.mjs', import.meta.url).href;

test('bench/db-statements.mjs charges each statement of a database thread to its name or SQL', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'db-statements-'));
  const report = join(dir, 'report.txt');
  try {
    const thread = new Worker(new URL('./db-statements-thread.mjs', import.meta.url), {
      execArgv: ['--import', preload],
      env: { ...process.env, OMS_DB_STATEMENTS: report },
    });
    await new Promise<void>((resolve, reject) => {
      thread.once('error', reject);
      thread.once('exit', (code) =>
        code === 0 ? resolve() : reject(new Error(`thread exited ${code}`)),
      );
    });
    const lines = readFileSync(report, 'utf8').trim().split('\n');
    assert.match(lines[0]!, /^database thread: [\d.]+ s since its first statement, [\d.]+ s of it/);
    const runs = (statement: string) => {
      const row = lines.find((l) => l.endsWith(`  ${statement}`));
      assert.ok(row, `no row for ${statement} in:\n${lines.join('\n')}`);
      return Number(row.trim().split(/\s+/)[2]);
    };
    // the two runs of the named statement by its name, after the PREPARE that made it
    assert.equal(runs('named probe_named'), 2);
    assert.equal(runs('prepare probe_named as select $1::int as n'), 1);
    // a statement without a name by its SQL, its parse, bind, execute and sync as one
    assert.equal(runs('select 41 + 1 as answer'), 1);
    assert.equal(runs('select $1::text as echoed'), 1);
    assert.ok(!lines.some((l) => l.endsWith('(unlabelled)')), lines.join('\n'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
