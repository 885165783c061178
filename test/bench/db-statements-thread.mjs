/**
 * A database thread for db-statements.test.ts: statements through the service's own
 * adapter, named and not, in a worker thread that preloads bench/db-statements.mjs, then
 * a wait for its report (written every 2 s). Plain JavaScript that loads tsx itself: a
 * worker thread's own file is read before any `--import` could teach Node TypeScript.
 */
import { setTimeout } from 'node:timers/promises';
import { register } from 'tsx/esm/api';

register();
const { createPgliteDb } = await import('../../src/store/pglite.ts');
const db = await createPgliteDb();
await db.query('select $1::int as n', [1], 'probe_named');
await db.query('select $1::int as n', [2], 'probe_named');
await db.query('select 41 + 1 as answer');
await db.query('select $1::text as echoed', ['unnamed, with a value']);
await setTimeout(2_500);
await db.close();
