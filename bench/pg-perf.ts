/**
 * Where PostgreSQL's own CPU goes while a probe runs: `perf record` of every server
 * process of the database for a few seconds in the middle of the command, then the share
 * of the samples under each of the executor's main steps (a sample counts once for each
 * step on its stack, so the shares overlap) and the busiest functions by self time.
 * Needs Linux's `perf` and the right to profile the server's processes (root, or
 * kernel.perf_event_paranoid <= 1 for processes of another user).
 *
 *   node --import tsx bench/pg-perf.ts [delay s] [record s] -- <command...>
 *   node --import tsx bench/pg-perf.ts 5 6 -- node --import tsx bench/publish-probe.ts 12 all
 *   PAD=200 node --import tsx bench/pg-perf.ts 20 8 -- node --import tsx bench/drain.ts 200000
 */
import { execFileSync } from 'node:child_process';
import { recordSamples, sleep, startProfiled } from './perf.js';

// what follows `--` is the command to run, where a probe takes its service's node flags
const { args, child, exited } = startProfiled('pg-perf.ts [delay s] [record s] -- <command...>');
const [delay = 5, seconds = 6] = args;

/** The executor's steps worth naming, from the statement down to the disk. */
const STEPS = [
  'PortalRun',
  'ExecInsertIndexTuples', // index entries of inserted rows and non-HOT updates
  '_bt_bottomupdel_pass', // index pages cleaned of versions left by non-HOT updates
  'index_getnext_slot', // index scans, nested-loop lookups by key included
  'heap_insert',
  'heap_update',
  'heap_delete',
  'RelationGetBufferForTuple', // room for a new row version, the table's growth included
  'AfterTriggerEndQuery', // after-row triggers: foreign-key checks
  'jsonb_in',
  'pg_plan_query',
  'CommitTransactionCommand',
  'XLogFlush', // the commit's WAL write and fsync
  'XLogFileInit', // new WAL segments
];

await sleep(delay);
let pids: string;
try {
  // the server's backends and background processes (their titles start with "postgres:")
  pids = execFileSync('pgrep', ['-d', ',', '-f', '^postgres'], { encoding: 'utf8' }).trim();
} catch {
  process.stderr.write('no PostgreSQL server process is running on this machine\n');
  child.kill('SIGTERM');
  process.exit(1);
}
const stacks = (await recordSamples(['-p', pids], seconds)).map((s) => s.frames.map((f) => f.sym));
const total = stacks.length;
const pct = (n: number) => `${((100 * n) / total).toFixed(1).padStart(5)}%`;
process.stdout.write(`\nPostgreSQL, ${total} samples over ${seconds} s\n-- under each step\n`);
for (const step of STEPS) {
  const n = stacks.filter((s) => s.includes(step)).length;
  process.stdout.write(`${pct(n)} ${step}\n`);
}
// a function without a symbol (a static one) is named by its nearest named caller
const self = new Map<string, number>();
for (const s of stacks) {
  const named = s.find((f) => f !== '[unknown]') ?? '[unknown]';
  const leaf = s[0] === '[unknown]' ? `[a static function under ${named}]` : s[0]!;
  self.set(leaf, (self.get(leaf) ?? 0) + 1);
}
process.stdout.write('-- self\n');
for (const [symbol, n] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 15))
  process.stdout.write(`${pct(n)} ${symbol}\n`);
process.exit(await exited);
