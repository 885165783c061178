/**
 * Preloaded into the service's processes by the benchmark (NODE_OPTIONS=--import, so
 * the worker processes inherit it): every 100 ms it notes how long the event loop was
 * held at most, and the longest GC pause, and every second it writes the last minute of
 * those notes to `$OMS_BENCH_LOOP_DIR/<pid>.json`. The bench reads them for the window
 * of its latency test, to tell a stall inside a service process from one outside it.
 * It costs one timer every 10 ms and one every 100 ms. Worker threads (PGlite runs in
 * one) load it too, sharing the process's pid and so its file: it stays off in them.
 */
import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';
import process from 'node:process';
import { setInterval } from 'node:timers';
import { isMainThread } from 'node:worker_threads';

const dir = process.env.OMS_BENCH_LOOP_DIR;
if (dir && isMainThread) {
  const role = process.argv.includes('worker') ? 'worker' : 'api';
  const histogram = monitorEventLoopDelay({ resolution: 10 });
  histogram.enable();
  let gcMs = 0;
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) gcMs = Math.max(gcMs, entry.duration);
  }).observe({ entryTypes: ['gc'] });
  /** [epoch ms at the end of the 100 ms, longest delay in ms, longest GC pause in ms] */
  const notes = [];
  setInterval(() => {
    notes.push([Date.now(), histogram.max / 1e6, gcMs]);
    if (notes.length > 600) notes.shift();
    histogram.reset();
    gcMs = 0;
  }, 100).unref();
  const file = join(dir, `${process.pid}.json`);
  setInterval(() => {
    // written aside and renamed, so the bench never reads half a file
    writeFileSync(`${file}.part`, JSON.stringify({ role, notes }));
    renameSync(`${file}.part`, file);
  }, 1_000).unref();
}
