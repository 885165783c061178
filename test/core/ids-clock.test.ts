import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isoMicro, ManualClock } from '../../src/core/clock.js';
import { newEventUuid, normaliseUuid, uuidHex } from '../../src/core/ids.js';

const DASHED = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

test('new event uuids are dashed lower-case v7 uuids, all different', () => {
  const a = newEventUuid();
  const b = newEventUuid();
  assert.match(a, DASHED);
  assert.notEqual(a, b);
});

test('a new event uuid starts with the time it is given, so later events sort after', () => {
  const at = Date.UTC(2024, 1, 19, 8, 12, 18, 591) + 0.206;
  const uuids = Array.from({ length: 1000 }, () => newEventUuid(at));
  // 0x018dc06c491f is 2024-02-19T08:12:18.591Z in milliseconds
  for (const u of uuids) assert.match(u, /^018dc06c-491f-7/);
  assert.equal(new Set(uuids).size, 1000);
  const next = newEventUuid(at + 1);
  assert.ok(next.startsWith('018dc06c-4920-7'), next);
  assert.ok(uuids.every((u) => u < next));
  // the zero-padded hex of the epoch, for any time a uuid can hold
  assert.match(newEventUuid(0), /^00000000-0000-7/);
  assert.match(newEventUuid(2 ** 48 - 1), /^ffffffff-ffff-7/);
});

test('uuidHex strips dashes and lower-cases', () => {
  assert.equal(uuidHex('0A1B2C3D-4E5F-4A6B-8C7D-8E9F0A1B2C3D'), '0a1b2c3d4e5f4a6b8c7d8e9f0a1b2c3d');
});

test('normaliseUuid accepts a uuid with or without dashes and returns it dashed', () => {
  const dashed = '0a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d';
  assert.equal(normaliseUuid(dashed), dashed);
  assert.equal(normaliseUuid(dashed.toUpperCase()), dashed);
  assert.equal(normaliseUuid('0a1b2c3d4e5f4a6b8c7d8e9f0a1b2c3d'), dashed);
  assert.equal(normaliseUuid('0A1B2C3D4E5F4A6B8C7D8E9F0A1B2C3D'), dashed);
  assert.equal(normaliseUuid(`  ${dashed} `), dashed);
});

test('normaliseUuid refuses anything else', () => {
  for (const bad of [
    '',
    'garbage',
    '0a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3',
    '0a1b2c3d4e5f4a6b8c7d8e9f0a1b2c3dd',
    '0a1b2c3d4e5f4a6b8c7d8e9f0a1b2c3g',
    '{0a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d}',
    '0a1b2c3d-4e5f4a6b-8c7d-8e9f0a1b2c3d',
  ]) {
    assert.equal(normaliseUuid(bad), null, bad);
  }
});

test('isoMicro keeps microseconds', () => {
  const ms = Date.parse('2024-02-19T08:12:18.591Z');
  assert.equal(isoMicro(ms + 0.206), '2024-02-19T08:12:18.591206Z');
  assert.equal(isoMicro(ms), '2024-02-19T08:12:18.591000Z');
  assert.equal(isoMicro(ms + 0.999), '2024-02-19T08:12:18.591999Z');
  assert.equal(isoMicro(ms + 0.001), '2024-02-19T08:12:18.591001Z');
  assert.equal(
    isoMicro(Date.parse('1999-12-31T23:59:59.999Z') + 0.5),
    '1999-12-31T23:59:59.999500Z',
  );
});

test('isoMicro formats each time by its own second, whichever it formatted before', () => {
  const plain = (t: number) => {
    const whole = Math.floor(t);
    const micros = Math.min(999, Math.max(0, Math.round((t - whole) * 1000)));
    return `${new Date(whole).toISOString().slice(0, -1)}${String(micros).padStart(3, '0')}Z`;
  };
  const second = Date.parse('2024-02-19T08:12:18Z');
  // within one second, across its edges, back to an earlier one, before 1970, a day apart
  const times = [
    second + 0.5,
    second + 999.9994,
    second + 1000,
    second - 0.0004,
    second + 1.25,
    -1.5,
    -1000,
    0,
    second + 86_400_000.002,
    second + 3.003,
  ];
  for (const t of times) assert.equal(isoMicro(t), plain(t), String(t));
  for (let t = second - 2500; t < second + 2500; t += 0.7919) assert.equal(isoMicro(t), plain(t));
});

test('ManualClock moves only when told', () => {
  const clock = new ManualClock(1_000);
  assert.equal(clock.now(), 1_000);
  clock.advance(2_500.25);
  assert.equal(clock.now(), 3_500.25);
  clock.set(10);
  assert.equal(clock.now(), 10);
});
