import { randomBytes } from 'node:crypto';

/**
 * JSON numbers that a JavaScript number would round, kept as their text.
 *
 * An order management system's ids are often 64-bit integers (9007199254740993 and up)
 * and its amounts may carry more digits than a double holds; `JSON.parse` rounds both,
 * so a webhook would deliver a payload other than the one published. Here a number with
 * more than 15 significant digits (a double keeps any 15) is parsed as a marked string,
 * the mark then its text, which passes through validation and the service's code as a
 * string, and is written back as the number it was by `stringifyExact` and, in an API
 * answer, by `unmarkNumbers`. The mark starts with a NUL and holds a random value drawn
 * at start, so no string a client sends is taken for one.
 */
const NONCE = randomBytes(8).toString('hex');
const MARK = `\u0000${NONCE}:`;

/** The mark as JSON text writes it inside a string, its NUL escaped. */
const MARK_WRITTEN = `\\u0000${NONCE}:`;
const MARKED = new RegExp(`"\\\\u0000${NONCE}:(-?[0-9][0-9.eE+-]*)"`, 'g');

/**
 * Whether `text` may hold a number of more than 15 digits: a run of 16 digits and dots
 * starting with a digit, which any such number has. Strings of digits pass too, and only
 * cost the slower parse.
 */
const MAY_ROUND = /[0-9][0-9.]{15}/;

/** The characters of a JSON number token after its first: digits, `.`, `e`, `E`, `+`, `-`. */
const NUMBER_CHAR = new Uint8Array(128);
for (const c of '0123456789.eE+-') NUMBER_CHAR[c.charCodeAt(0)] = 1;

/** Whether a number token's digits, before its exponent, are more than 15. */
function rounds(token: string): boolean {
  let digits = 0;
  for (let i = 0; i < token.length; i++) {
    const c = token.charCodeAt(i);
    if (c === 101 || c === 69) break; // e, E
    if (c >= 48 && c <= 57) digits++;
  }
  return digits > 15;
}

/**
 * `text` with every number of more than 15 digits written as a marked string. Only
 * valid JSON is rewritten as valid JSON; anything else keeps its fault for the parser to
 * report (at a position that the marks may have moved).
 */
export function markLongNumbers(text: string): string {
  if (!MAY_ROUND.test(text)) return text;
  let out = '';
  let from = 0;
  let i = 0;
  const n = text.length;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === 34) {
      // a string: to its closing quote, past escapes
      i++;
      while (i < n) {
        const s = text.charCodeAt(i);
        if (s === 92) i += 2;
        else if (s === 34) break;
        else i++;
      }
      i++;
    } else if (c === 45 || (c >= 48 && c <= 57)) {
      let end = i + 1;
      while (end < n && NUMBER_CHAR[text.charCodeAt(end)] === 1) end++;
      const token = text.slice(i, end);
      if (rounds(token)) {
        out += `${text.slice(from, i)}"${MARK_WRITTEN}${token}"`;
        from = end;
      }
      i = end;
    } else i++;
  }
  return from === 0 ? text : out + text.slice(from);
}

/** Whether a value is a number kept as its text. */
export const isMarked = (value: unknown): value is string =>
  typeof value === 'string' && value.startsWith(MARK);

/** A marked number's text; any other value as `String` writes it. */
export const numberText = (value: unknown): string =>
  isMarked(value) ? value.slice(MARK.length) : String(value);

/** `JSON.parse`, with the numbers it would round kept as marked strings. */
export function parseExact(text: string): unknown {
  return JSON.parse(markLongNumbers(text));
}

/**
 * The value with its marked numbers turned back into JavaScript numbers, rounded: for
 * the parts of a request whose numbers are ids and counts, read as they always were.
 */
export function roundMarked(value: unknown): unknown {
  if (isMarked(value)) return Number(numberText(value));
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) value[i] = roundMarked(value[i]);
  } else if (typeof value === 'object' && value !== null) {
    const record = value as Record<string, unknown>;
    for (const key of Object.keys(record)) record[key] = roundMarked(record[key]);
  }
  return value;
}

/** JSON text in which the marked strings `JSON.stringify` wrote are numbers again. */
export const unmarkNumbers = (json: string): string =>
  json.includes(MARK_WRITTEN) ? json.replace(MARKED, '$1') : json;

/** `JSON.stringify`, writing marked numbers as the numbers they were. */
export const stringifyExact = (value: unknown): string =>
  unmarkNumbers(JSON.stringify(value) ?? 'null');
