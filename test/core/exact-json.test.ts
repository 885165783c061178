import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  isMarked,
  numberText,
  parseExact,
  roundMarked,
  stringifyExact,
  unmarkNumbers,
} from '../../src/core/exact-json.js';

test('text without a number of more than 15 digits parses as JSON.parse parses it', () => {
  for (const text of [
    '{"a":1,"b":-2.5,"c":[1e21,0.000001,123456789012345],"d":"x\\"y","e":null}',
    '[true,false,{"n":-0}]',
    '"a string of 1234567890123456789 digits"',
    '  {"spaced" : [ 1 , 2 ] }  ',
  ]) {
    assert.deepEqual(parseExact(text), JSON.parse(text), text);
  }
  // strings of digits are left as they are, wherever their quotes and escapes fall
  const strings = '{"s":"12345678901234567890","t":"a\\"12345678901234567890\\\\","u":"\\\\"}';
  assert.deepEqual(parseExact(strings), JSON.parse(strings));
});

test('numbers of more than 15 digits come back exactly as they were written', () => {
  for (const text of [
    '{"id":12345678901234567890}',
    '{"id":-9007199254740993,"n":[9007199254740993,1]}',
    '{"amount":0.12345678901234567891,"e":1.2345678901234567e+30,"small":-1.5}',
    '[12345678901234567,"12345678901234567",{"k":{"deeper":[99999999999999999999]}}]',
    '{"x":123456789012.3456789}',
  ]) {
    assert.equal(stringifyExact(parseExact(text)), text);
  }
  const parsed = parseExact('{"id":12345678901234567890,"pk":9007199254740993}') as Record<
    string,
    unknown
  >;
  assert.ok(isMarked(parsed.id));
  assert.equal(numberText(parsed.id), '12345678901234567890');
  assert.equal(numberText(42), '42');
  // rounded back into numbers where the exact text is not wanted
  assert.deepEqual(roundMarked(parsed), {
    id: Number('12345678901234567890'),
    pk: 2 ** 53,
  });
});

test("a client's string that looks like a kept number stays a string", () => {
  const text = '{"s":"\\u0000deadbeefdeadbeef:12345678901234567890"}';
  assert.equal(stringifyExact(parseExact(text)), text);
  assert.equal(isMarked((parseExact(text) as { s: string }).s), false);
  assert.equal(unmarkNumbers(text), text);
});

test('invalid JSON is left for the parser to refuse', () => {
  for (const text of ['{"a":12345678901234567890', '{"a":12345678901234567890x}', '"abc']) {
    assert.throws(() => parseExact(text), SyntaxError, text);
  }
});
