import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  countdownSeconds,
  DEFAULT_RETRY_COUNTDOWN,
  parseRetryCountdownConfig,
  type RetryCountdownConfig,
} from '../../src/core/retry.js';

const series = (config: RetryCountdownConfig, n: number, random?: () => number) =>
  Array.from({ length: n }, (_, i) => countdownSeconds(config, i + 1, random));

describe('countdownSeconds', () => {
  test('fixed waits the same number of seconds after every attempt', () => {
    assert.deepEqual(series({ choice: 'fixed', kwargs: { seconds: 45 } }, 4), [45, 45, 45, 45]);
    assert.deepEqual(series({ choice: 'fixed', kwargs: { seconds: 0 } }, 2), [0, 0]);
  });

  test('linear waits base * n', () => {
    assert.deepEqual(series({ choice: 'linear', kwargs: { base: 7 } }, 4), [7, 14, 21, 28]);
    assert.deepEqual(
      series({ choice: 'linear', kwargs: { base: 7, limit: null } }, 3),
      [7, 14, 21],
    );
  });

  test('linear stops growing at its limit', () => {
    assert.deepEqual(
      series({ choice: 'linear', kwargs: { base: 10, limit: 25 } }, 5),
      [10, 20, 25, 25, 25],
    );
  });

  test('exponential waits base ** n with factor 1 by default', () => {
    assert.deepEqual(series({ choice: 'exponential', kwargs: { base: 2 } }, 5), [2, 4, 8, 16, 32]);
    assert.deepEqual(
      series({ choice: 'exponential', kwargs: { base: 3, factor: null, limit: null } }, 3),
      [3, 9, 27],
    );
  });

  test('exponential multiplies by factor and stops at its limit', () => {
    assert.deepEqual(
      series({ choice: 'exponential', kwargs: { base: 3, factor: 2 } }, 4),
      [6, 18, 54, 162],
    );
    assert.deepEqual(
      series({ choice: 'exponential', kwargs: { base: 3, factor: 2, limit: 100 } }, 5),
      [6, 18, 54, 100, 100],
    );
  });

  test('the default strategy is exponential base 2 (2**18 s for the 18th attempt)', () => {
    assert.deepEqual(DEFAULT_RETRY_COUNTDOWN, { choice: 'exponential', kwargs: { base: 2 } });
    assert.equal(countdownSeconds(DEFAULT_RETRY_COUNTDOWN, 1), 2);
    assert.equal(countdownSeconds(DEFAULT_RETRY_COUNTDOWN, 17), 131072);
  });

  test('random draws an integer between min_value and max_value, both included', () => {
    const config: RetryCountdownConfig = {
      choice: 'random',
      kwargs: { min_value: 5, max_value: 9 },
    };
    assert.equal(
      countdownSeconds(config, 1, () => 0),
      5,
    );
    assert.equal(
      countdownSeconds(config, 1, () => 0.999999),
      9,
    );
    assert.equal(
      countdownSeconds(config, 3, () => 0.5),
      7,
    );
    // every value of the range can come out, and nothing else
    const seen = new Set<number>();
    for (let i = 0; i < 100; i++) seen.add(countdownSeconds(config, 1, () => i / 100));
    assert.deepEqual(
      [...seen].sort((a, b) => a - b),
      [5, 6, 7, 8, 9],
    );
  });

  test('random with the real generator stays within bounds and is an integer', () => {
    const config: RetryCountdownConfig = {
      choice: 'random',
      kwargs: { min_value: 1, max_value: 3 },
    };
    for (let i = 0; i < 200; i++) {
      const v = countdownSeconds(config, 1);
      assert.ok(Number.isInteger(v) && v >= 1 && v <= 3, `got ${v}`);
    }
  });
});

describe('parseRetryCountdownConfig', () => {
  const accepts: [string, unknown, RetryCountdownConfig][] = [
    [
      'fixed',
      { choice: 'fixed', kwargs: { seconds: 30 } },
      { choice: 'fixed', kwargs: { seconds: 30 } },
    ],
    [
      'linear',
      { choice: 'linear', kwargs: { base: 5 } },
      { choice: 'linear', kwargs: { base: 5 } },
    ],
    [
      'linear with limit',
      { choice: 'linear', kwargs: { base: 5, limit: 60 } },
      { choice: 'linear', kwargs: { base: 5, limit: 60 } },
    ],
    [
      'exponential with factor and limit',
      { choice: 'exponential', kwargs: { base: 2, factor: 3, limit: 600 } },
      { choice: 'exponential', kwargs: { base: 2, factor: 3, limit: 600 } },
    ],
    [
      'exponential with null optionals',
      { choice: 'exponential', kwargs: { base: 2, factor: null, limit: null } },
      { choice: 'exponential', kwargs: { base: 2 } },
    ],
    [
      'random',
      { choice: 'random', kwargs: { min_value: 1, max_value: 10 } },
      { choice: 'random', kwargs: { min_value: 1, max_value: 10 } },
    ],
  ];
  for (const [name, input, expected] of accepts) {
    test(`accepts ${name}`, () => {
      assert.deepEqual(parseRetryCountdownConfig(input), { ok: true, value: expected });
    });
  }

  const rejects: [string, unknown, (errors: Record<string, unknown>) => void][] = [
    ['null', null, (e) => assert.ok(e.non_field_errors)],
    ['an array', [], (e) => assert.ok(e.non_field_errors)],
    ['a string', 'fixed', (e) => assert.ok(e.non_field_errors)],
    ['an unknown choice', { choice: 'fibonacci', kwargs: {} }, (e) => assert.ok(e.choice)],
    ['a missing choice', { kwargs: { seconds: 1 } }, (e) => assert.ok(e.choice)],
    [
      'a missing required argument',
      { choice: 'fixed', kwargs: {} },
      (e) => assert.deepEqual(e, { kwargs: { seconds: ['This field is required.'] } }),
    ],
    [
      'missing kwargs',
      { choice: 'linear' },
      (e) => assert.deepEqual(e, { kwargs: { base: ['This field is required.'] } }),
    ],
    ['kwargs that are not an object', { choice: 'fixed', kwargs: [] }, (e) => assert.ok(e.kwargs)],
    [
      'a negative number',
      { choice: 'linear', kwargs: { base: -1 } },
      (e) => assert.ok((e.kwargs as Record<string, unknown>).base),
    ],
    [
      'a number as a string',
      { choice: 'fixed', kwargs: { seconds: '10' } },
      (e) => assert.ok((e.kwargs as Record<string, unknown>).seconds),
    ],
    [
      'an unknown argument',
      { choice: 'fixed', kwargs: { seconds: 1, base: 2 } },
      (e) => assert.ok((e.kwargs as Record<string, unknown>).base),
    ],
    [
      'random with min_value above max_value',
      { choice: 'random', kwargs: { min_value: 10, max_value: 1 } },
      (e) => assert.ok((e.kwargs as Record<string, unknown>).non_field_errors),
    ],
    [
      'random with a missing bound',
      { choice: 'random', kwargs: { min_value: 1 } },
      (e) => assert.ok((e.kwargs as Record<string, unknown>).max_value),
    ],
  ];
  for (const [name, input, check] of rejects) {
    test(`rejects ${name}`, () => {
      const result = parseRetryCountdownConfig(input);
      assert.equal(result.ok, false);
      if (!result.ok) check(result.errors);
    });
  }
});
