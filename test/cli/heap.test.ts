import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const HEAP_MODULE = fileURLToPath(new URL('../../src/cli/heap.ts', import.meta.url));

/**
 * The largest heap a process reaches while keeping about 40 MB alive and replacing a
 * part of it all the time, as a service does with its events; growHeapsByHalf called
 * first when `grow`. In a process of its own: a V8 flag, once set, stays set.
 */
function largestHeapMb(grow: boolean): number {
  const script = `
    import { getHeapStatistics } from 'node:v8';
    ${grow ? `(await import(${JSON.stringify(HEAP_MODULE)})).growHeapsByHalf();` : ''}
    const live = [];
    let largest = 0;
    for (let round = 0; round < 400; round++) {
      for (let i = 0; i < 2000; i++) live.push({ text: 'x'.repeat(200) + round + ':' + i });
      if (live.length > 150000) live.splice(0, 20000);
      largest = Math.max(largest, getHeapStatistics().total_heap_size);
    }
    process.stdout.write(String(largest / 1048576));`;
  const out = execFileSync(
    process.execPath,
    ['--import', 'tsx', '--input-type=module', '-e', script],
    { encoding: 'utf8' },
  );
  return Number(out);
}

// V8 reads the flag as it collects: set at run time, not only on node's command line
test('a process that grows its heaps by half holds a smaller heap for the same live data', () => {
  const plain = largestHeapMb(false);
  const halved = largestHeapMb(true);
  assert.ok(
    halved < 0.8 * plain,
    `largest heap ${halved.toFixed(0)} MB against ${plain.toFixed(0)} MB`,
  );
});
