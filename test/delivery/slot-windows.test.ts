import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SLOT_WINDOW_START, SLOW_ANSWER_MS, SlotWindows } from '../../src/delivery/slot-windows.js';

test('a window starts small, opens by one per answer up to the share, and halves per timeout', () => {
  const windows = new SlotWindows(50);
  assert.equal(windows.of(7), SLOT_WINDOW_START);
  for (let i = 0; i < 100; i++) windows.answered(7, 5);
  assert.equal(windows.of(7), 50, 'never past the share');
  const seen: number[] = [];
  for (let i = 0; i < 7; i++) {
    windows.timedOut(7);
    seen.push(windows.of(7));
  }
  assert.deepEqual(seen, [25, 12, 6, 3, 1, 1, 1], 'down to one slot, never none');
  assert.deepEqual([...windows.throttled()], [7], 'below the first window: claims hold less of it');
  windows.answered(7, 5);
  windows.answered(7, 5);
  assert.equal(windows.of(7), 3);
  windows.answered(7, 5);
  assert.deepEqual([...windows.throttled()], [], 'back at the first window');
  assert.equal(windows.of(8), SLOT_WINDOW_START, 'other webhooks are untouched');
});

test('a share smaller than the first window is the first window', () => {
  const windows = new SlotWindows(2);
  assert.equal(windows.of(1), 2);
  windows.timedOut(1);
  assert.equal(windows.of(1), 1);
});

test('only the most recently changed windows are remembered', () => {
  const windows = new SlotWindows(50, SLOT_WINDOW_START, 3);
  for (const id of [1, 2, 3]) windows.timedOut(id);
  windows.timedOut(1); // changed again: now the most recent
  windows.timedOut(4); // one too many: 2 is forgotten
  assert.deepEqual(
    [1, 2, 3, 4].map((id) => windows.of(id)),
    [1, SLOT_WINDOW_START, 2, 2],
  );
  assert.deepEqual([...windows.throttled()].sort(), [1, 3, 4]);
});

test('a webhook is slow while its last attempt timed out or was answered slowly', () => {
  const windows = new SlotWindows(50);
  assert.equal(windows.slow(1), false);
  windows.answered(1, SLOW_ANSWER_MS);
  assert.equal(windows.slow(1), true, 'a slow answer');
  assert.equal(windows.of(1), SLOT_WINDOW_START + 1, 'which still opens the window');
  windows.answered(1, 20);
  assert.equal(windows.slow(1), false, 'a prompt answer');
  windows.timedOut(1);
  assert.equal(windows.slow(1), true, 'a timeout');
});
