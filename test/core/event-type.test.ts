import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  isPattern,
  isValidEventTypeName,
  isValidSubscription,
  matchesEventType,
} from '../../src/core/event-type.js';

const cases: [string, string, boolean][] = [
  ['package.created', 'package.created', true],
  ['package.created', 'package.updated', false],
  ['package.created', 'package.created.late', false],
  ['package.created', 'package', false],
  ['package.*', 'package.created', true],
  ['package.*', 'package.status.shipped', true],
  ['package.*', 'package', false],
  ['package.*', 'order.created', false],
  ['package.*', 'packages.created', false],
  ['*', 'package.created', true],
  ['*', 'order.created', true],
  ['*', 'anything', true],
  ['*.created', 'order.created', true],
  ['*.created', 'package.created', true],
  ['*.created', 'package.updated', false],
  ['*.created', 'package.status.created', false],
  ['package.*.shipped', 'package.status.shipped', true],
  ['package.*.shipped', 'package.status.delivered', false],
  ['package.*.shipped', 'package.a.b.shipped', false],
  ['package.status.*', 'package.status.shipped', true],
  ['package.status.*', 'package.created', false],
  ['order.created', 'package.created', false],
];

for (const [subscription, eventType, expected] of cases) {
  test(`"${subscription}" ${expected ? 'matches' : 'does not match'} "${eventType}"`, () => {
    assert.equal(matchesEventType(subscription, eventType), expected);
  });
}

test('isPattern tells names from patterns', () => {
  assert.equal(isPattern('package.created'), false);
  assert.equal(isPattern('package.*'), true);
  assert.equal(isPattern('*'), true);
  assert.equal(isPattern('*.created'), true);
  assert.equal(isPattern('package.*.shipped'), true);
  // a `*` inside a segment is no wildcard
  assert.equal(isPattern('package*.created'), false);
  assert.equal(isPattern('package.*created'), false);
  assert.equal(isPattern('package.created*'), false);
  assert.equal(isPattern('**'), false);
  assert.equal(isPattern(''), false);
});

test('isPattern says what splitting into segments says, for every short string', () => {
  const alphabet = ['a', '.', '*'];
  let strings = [''];
  for (let length = 1; length <= 7; length++) {
    strings = strings.flatMap((s) => alphabet.map((c) => s + c));
    for (const s of strings) {
      assert.equal(isPattern(s), s.split('.').includes('*'), JSON.stringify(s));
    }
  }
});

test('valid names and subscriptions', () => {
  assert.equal(isValidEventTypeName('package.status.shipped'), true);
  assert.equal(isValidEventTypeName('package.*'), false);
  assert.equal(isValidEventTypeName('package..created'), false);
  assert.equal(isValidEventTypeName(''), false);
  assert.equal(isValidSubscription('package.*'), true);
  assert.equal(isValidSubscription('*'), true);
  assert.equal(isValidSubscription('package.**'), false);
  assert.equal(isValidSubscription('package.'), false);
});
