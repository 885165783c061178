/**
 * Where the embedded database's thread spends its time, statement by statement: what
 * PostgreSQL's `pg_stat_statements` would say, which PGlite cannot load. A preload for a
 * service on PGlite, given to it as a node flag after a probe's `--`:
 *
 *   PROBE_DB=pglite node --import tsx bench/backlog-probe.ts 300000 -- --import ./bench/db-statements.mjs
 *
 * In the service's database thread (src/store/pglite-thread.ts; the main thread and
 * worker processes leave it off) it times each call into PGlite's protocol, WAL and data
 * flushes included, and charges it to the statement it belongs to: a named statement by
 * its name, any other by the start of its SQL (PGlite's `query` sends the parse, bind,
 * execute and sync of one statement in separate calls, one after the other). Every 2 s
 * it writes a table to `$OMS_DB_STATEMENTS` (default `db-statements-<pid>.txt` in the
 * temporary folder): per statement its runs, total and longest time, and the share of
 * the thread's time since its first statement. Calls wait their turn in PGlite before
 * they start, so the times do not overlap and their sum is how long the thread was held.
 */
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import process from 'node:process';
import { setInterval } from 'node:timers';
import { TextDecoder } from 'node:util';
import { isMainThread } from 'node:worker_threads';

if (!isMainThread) {
  const { PGlite } = await import('@electric-sql/pglite');
  const out = process.env.OMS_DB_STATEMENTS || join(tmpdir(), `db-statements-${process.pid}.txt`);
  const text = new TextDecoder();
  const sqlOf = (bytes) => text.decode(bytes).replace(/\s+/g, ' ').trim().slice(0, 80);

  /**
   * What a call carries, from its frontend messages (type byte, 4-byte length counting
   * itself, body): the statement it starts, if any (a Bind to a named statement, a Parse,
   * or a simple Query other than the planner settings wrapped around a named statement;
   * none for a call that goes on with the statement before it: an unnamed Bind, a
   * Describe, an Execute), and whether the statement ends with it (a Sync, or a simple
   * Query, ends one). A Terminate alone is no statement (`skip`).
   */
  const read = (buffer) => {
    const bytes = buffer instanceof Uint8Array ? buffer : new Uint8Array(buffer);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (bytes.length === 5 && bytes[0] === 0x58) return { skip: true };
    let label;
    let settings;
    let ends = false;
    for (let at = 0; at + 5 <= bytes.length; at += 1 + view.getInt32(at + 1)) {
      const type = String.fromCharCode(bytes[at]);
      const body = bytes.subarray(at + 5, at + 1 + view.getInt32(at + 1));
      const cstring = (from) => body.subarray(from, body.indexOf(0, from));
      if (type === 'S') ends = true;
      if (label !== undefined) continue;
      if (type === 'B') {
        const name = text.decode(cstring(cstring(0).length + 1));
        if (name) label = `named ${name}`;
      } else if (type === 'P') {
        label = sqlOf(cstring(cstring(0).length + 1));
      } else if (type === 'Q') {
        ends = true;
        const sql = sqlOf(cstring(0));
        if (/^(set|reset) /i.test(sql)) settings ??= sql;
        else label = sql;
      }
    }
    return { label: label ?? settings, ends };
  };

  /** Per statement: runs, total ms, longest ms. */
  const stats = new Map();
  let current; // the statement being run: { label, ms }
  let firstAt;
  const close = () => {
    if (!current) return;
    const s = stats.get(current.label) ?? { runs: 0, ms: 0, max: 0 };
    s.runs++;
    s.ms += current.ms;
    s.max = Math.max(s.max, current.ms);
    stats.set(current.label, s);
    current = undefined;
  };

  const raw = PGlite.prototype.execProtocolRaw;
  PGlite.prototype.execProtocolRaw = async function (message, options) {
    const { label, ends, skip } = read(message);
    if (skip) return raw.call(this, message, options);
    if (label !== undefined || !current) {
      close();
      current = { label: label ?? '(unlabelled)', ms: 0 };
    }
    const statement = current;
    const started = performance.now();
    firstAt ??= started;
    try {
      return await raw.call(this, message, options);
    } finally {
      statement.ms += performance.now() - started;
      if (ends && current === statement) close();
    }
  };

  setInterval(() => {
    if (firstAt === undefined) return;
    const wallMs = performance.now() - firstAt;
    let busyMs = 0;
    for (const s of stats.values()) busyMs += s.ms;
    const rows = [...stats].sort((a, b) => b[1].ms - a[1].ms);
    const pad = (v, n) => String(v).padStart(n);
    const lines = [
      `database thread: ${(wallMs / 1000).toFixed(1)} s since its first statement, ` +
        `${(busyMs / 1000).toFixed(1)} s of it in statements (${((100 * busyMs) / wallMs).toFixed(1)}%)`,
      `${pad('share', 6)} ${pad('total ms', 9)} ${pad('runs', 8)} ${pad('mean us', 8)} ${pad('max ms', 7)}  statement`,
      ...rows.map(
        ([label, s]) =>
          `${pad(((100 * s.ms) / wallMs).toFixed(1) + '%', 6)} ${pad(s.ms.toFixed(0), 9)} ` +
          `${pad(s.runs, 8)} ${pad(((1000 * s.ms) / s.runs).toFixed(0), 8)} ` +
          `${pad(s.max.toFixed(1), 7)}  ${label}`,
      ),
    ];
    try {
      writeFileSync(out, lines.join('\n') + '\n');
    } catch {
      // a report that cannot be written must not end the database's thread
    }
  }, 2_000).unref();
}
