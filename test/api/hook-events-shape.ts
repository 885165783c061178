import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';

/**
 * The hook-event API's object shapes, as the public OMS documentation shows them
 * (/work/shared/seeds/*.txt). The key lists are written out here so the tests run
 * anywhere; `seedExamples()` re-derives them from the seed text when it is present and
 * a test checks the two agree.
 */
export const PAGE_KEYS = ['count', 'next', 'previous', 'results'];

export const HOOK_EVENT_KEYS = [
  'id',
  'webhook',
  'created_date',
  'modified_date',
  'uuid',
  'request_payload',
  'response_content',
  'response_http_status',
  'delivered',
  'request_datetimes',
  'retry_count',
  'object_id',
  'content_type',
];

export const WEBHOOK_KEYS = [
  'id',
  'retry_countdown_config',
  'created_date',
  'modified_date',
  'target_url',
  'is_active',
  'secret_key',
  'event_type',
  'callback',
  'additional_headers',
  'config',
];

export const TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;
export const DASHED_UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
export const HEX_UUID = /^[0-9a-f]{32}$/;

/** The seeds live in shared/, beside the repository (as CI lays it out), else in /work/shared. */
export const SEED_DIR =
  [new URL('../../../shared/seeds', import.meta.url).pathname, '/work/shared/seeds'].find((dir) =>
    existsSync(dir),
  ) ?? '/work/shared/seeds';
export const SEED_FILES = {
  events: `${SEED_DIR}/webhook-event-services.txt`,
  undelivered: `${SEED_DIR}/undelivered-webhook-event-services.txt`,
};

/** The JSON object that starts at the `{` before `marker` (first match after `from`). */
function jsonObjectAt(text: string, marker: string, from = 0): unknown {
  const at = text.indexOf(marker, from);
  assert.ok(at >= 0, `seed text has no ${marker}`);
  const start = text.lastIndexOf('{', at);
  let depth = 0;
  let inString = false;
  for (let i = start; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === '{') depth++;
    else if (c === '}' && --depth === 0) return JSON.parse(text.slice(start, i + 1));
  }
  throw new Error(`unbalanced JSON after ${marker}`);
}

export interface SeedExamples {
  list: Record<string, unknown>;
  detail: Record<string, unknown>;
  undelivered: Record<string, unknown>;
}

/** The example bodies of the seed pages, or undefined when the seed files are absent. */
export function seedExamples(): SeedExamples | undefined {
  if (!existsSync(SEED_FILES.events) || !existsSync(SEED_FILES.undelivered)) return undefined;
  const events = readFileSync(SEED_FILES.events, 'utf8');
  const undelivered = readFileSync(SEED_FILES.undelivered, 'utf8');
  const detailAt = events.indexOf('GET Webhook Detail');
  return {
    list: jsonObjectAt(events, '"count"') as Record<string, unknown>,
    detail: jsonObjectAt(events, '"id"', events.indexOf('Example Response', detailAt)) as Record<
      string,
      unknown
    >,
    undelivered: jsonObjectAt(undelivered, '"count"') as Record<string, unknown>,
  };
}

type Json = Record<string, unknown>;

/** Asserts one hook event has the documented keys, in order, with the documented types. */
export function assertHookEventShape(event: Json): void {
  assert.deepEqual(Object.keys(event), HOOK_EVENT_KEYS);
  assert.ok(Number.isInteger(event.id), `id ${String(event.id)} is an integer`);
  assert.match(event.uuid as string, DASHED_UUID);
  assert.match(event.created_date as string, TIMESTAMP);
  assert.match(event.modified_date as string, TIMESTAMP);
  assert.equal(typeof event.delivered, 'boolean');
  assert.ok(Array.isArray(event.request_datetimes));
  for (const t of event.request_datetimes as unknown[]) assert.match(t as string, TIMESTAMP);
  assert.ok(event.retry_count === null || Number.isInteger(event.retry_count));
  assert.ok(event.response_http_status === null || Number.isInteger(event.response_http_status));
  assert.ok(event.response_content === null || typeof event.response_content === 'string');
  assert.ok(Number.isInteger(event.content_type), 'content_type is an integer');
  assert.ok(
    Number.isInteger(event.object_id) || typeof event.object_id === 'string',
    'object_id is an integer or a string',
  );

  const payload = event.request_payload as Json;
  assert.deepEqual(Object.keys(payload), ['event', 'payload']);
  const header = payload.event as Json;
  assert.deepEqual(Object.keys(header), ['type', 'uuid']);
  assert.equal(typeof header.type, 'string');
  assert.match(header.uuid as string, HEX_UUID);
  assert.equal(header.uuid, (event.uuid as string).replaceAll('-', ''));

  const webhook = event.webhook as Json;
  assert.deepEqual(Object.keys(webhook), WEBHOOK_KEYS);
  assert.ok(Number.isInteger(webhook.id));
  assert.match(webhook.created_date as string, TIMESTAMP);
  assert.match(webhook.modified_date as string, TIMESTAMP);
  assert.equal(typeof webhook.target_url, 'string');
  assert.equal(typeof webhook.is_active, 'boolean');
  assert.equal(typeof webhook.secret_key, 'string');
  assert.equal(typeof webhook.event_type, 'string');
  assert.ok(webhook.callback === null || typeof webhook.callback === 'string');
  const retry = webhook.retry_countdown_config as Json;
  assert.deepEqual(Object.keys(retry), ['choice', 'kwargs']);
  assert.equal(typeof webhook.additional_headers, 'object');
  assert.equal(typeof webhook.config, 'object');
}

/** Asserts a page body has exactly the documented keys and its items their shape. */
export function assertPageShape(body: Json): void {
  assert.deepEqual(Object.keys(body), PAGE_KEYS);
  assert.ok(Number.isInteger(body.count));
  assert.ok(body.next === null || typeof body.next === 'string');
  assert.ok(body.previous === null || typeof body.previous === 'string');
  assert.ok(Array.isArray(body.results));
  for (const item of body.results as Json[]) assertHookEventShape(item);
}

/** A path plus query from an absolute pagination link, for app.inject. */
export function pathOf(link: string): string {
  const url = new URL(link);
  return url.pathname + url.search;
}
