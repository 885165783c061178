import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Db, Queryable } from '../../src/store/db.js';
import { listHookEvents, type Ordering } from '../../src/store/hook-events.js';
import { testDb } from '../helpers/db.js';
import { insertWebhook } from '../helpers/rows.js';

let db: Db;
let drop: () => Promise<void>;
let webhook: number;

before(async () => {
  ({ db, drop } = await testDb());
  const { rows } = await db.query<{ id: number }>(
    `insert into users (username, is_admin) values ('plan', true) returning id`,
  );
  webhook = await insertWebhook(db, rows[0]!.id);
  await db.query(
    `insert into hook_events (webhook_id, uuid, event_type, request_payload, delivered, retry_count)
     select $1, gen_random_uuid(), 'package.created', '{}', g % 10 <> 0, 1
     from generate_series(1, 2000) g`,
    [webhook],
  );
  await db.query('analyze hook_events');
});
after(() => drop());

/** The statement `listHookEvents` sends, and its parameters, without running it. */
async function listStatement(ordering: Ordering): Promise<{ sql: string; params: unknown[] }> {
  let sent: { sql: string; params: unknown[] } | undefined;
  const capture = {
    query: async (sql: string, params: unknown[] = []) => {
      sent = { sql, params };
      return { rows: [], rowCount: 0 };
    },
  } as unknown as Queryable;
  await listHookEvents(
    capture,
    { userId: 0, isAdmin: true },
    { webhook, delivered: false },
    ordering,
    20,
    0,
  );
  assert.ok(sent, 'listHookEvents sent no statement');
  return sent;
}

/** The plan's node types, with sorts made as costly to the planner as they can be. */
async function planNodes(sql: string, params: unknown[]): Promise<string[]> {
  return db.transaction(async (tx) => {
    await tx.query('set local enable_sort = off');
    await tx.query('set local enable_seqscan = off');
    const { rows } = await tx.query<{ 'QUERY PLAN': unknown }>(
      `explain (format json) ${sql}`,
      params,
    );
    const raw = rows[0]!['QUERY PLAN'];
    const plan = (typeof raw === 'string' ? JSON.parse(raw) : raw) as [{ Plan: PlanNode }];
    const types: string[] = [];
    const walk = (node: PlanNode) => {
      types.push(node['Node Type']);
      for (const child of node.Plans ?? []) walk(child);
    };
    walk(plan[0].Plan);
    return types;
  });
}

interface PlanNode {
  'Node Type': string;
  Plans?: PlanNode[];
}

test("the first page of a webhook's undelivered events, by id, is read off an index", async () => {
  for (const ordering of [
    [],
    [{ field: 'id', desc: true }],
    [{ field: 'id', desc: false }],
  ] as Ordering[]) {
    const { sql, params } = await listStatement(ordering);
    const nodes = await planNodes(sql, params);
    assert.ok(
      !nodes.includes('Sort'),
      `ordering ${JSON.stringify(ordering)}: ${nodes.join(' > ')}`,
    );
    assert.ok(
      nodes.some((n) => n.startsWith('Index')),
      `ordering ${JSON.stringify(ordering)}: ${nodes.join(' > ')}`,
    );
  }
});
