import assert from 'node:assert/strict';
import { test } from 'node:test';
import { documents } from '../../src/queue/enqueue.js';
import { newHookEvent } from '../helpers/rows.js';

// A payload's text as the API built it: key order and spacing are kept, not re-serialized.
const events = Array.from({ length: 40 }, (_, n) => ({
  ...newHookEvent(1 + (n % 3), n, { n, pad: 'x'.repeat(n * 7) }),
  requestPayload: `{"event": {"type":"package.created"},  "payload":{"z":1,"n":${n},"pad":"${'x'.repeat(n * 7)}"}}`,
}));

test('events split over statements keep each payload beside its own event, in order', () => {
  const limit = 2_000;
  const docs = documents(events, limit);
  assert.ok(docs.length > 5, `several statements: ${docs.length}`);
  const rows: { uuid: string; webhook_id: number; object_id: number }[] = [];
  const payloads: string[] = [];
  for (const doc of docs) {
    const docRows = JSON.parse(doc.rows) as typeof rows;
    const docPayloads = JSON.parse(doc.payloads) as unknown[];
    assert.equal(docRows.length, docPayloads.length, 'as many payloads as events');
    assert.ok(docRows.length === 1 || doc.rows.length + doc.payloads.length <= limit);
    rows.push(...docRows);
    // the texts as they stand in the array, which json_array_elements hands over
    payloads.push(...docPayloads.map((p) => JSON.stringify(p)));
  }
  assert.deepEqual(
    rows.map((r) => [r.uuid, r.webhook_id, r.object_id]),
    events.map((e) => [e.uuid, e.webhookId, e.objectId]),
  );
  assert.deepEqual(
    payloads,
    events.map((e) => JSON.stringify(JSON.parse(e.requestPayload))),
  );
  // and the text itself goes in untouched
  for (const e of events) assert.ok(docs.some((d) => d.payloads.includes(e.requestPayload)));
});

test('one event larger than the limit still goes, in a statement of its own', () => {
  const docs = documents(events.slice(30, 33), 10);
  assert.equal(docs.length, 3);
  for (const [i, doc] of docs.entries())
    assert.equal(doc.payloads, `[${events[30 + i]!.requestPayload}]`);
});

test('by default the whole publish is one statement', () => {
  const docs = documents(events);
  assert.equal(docs.length, 1);
  assert.equal((JSON.parse(docs[0]!.rows) as unknown[]).length, events.length);
});
