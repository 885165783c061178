/**
 * Creates the embedded database's cluster in the data directory given as the argument,
 * then exits (see createCluster in pglite-thread.ts).
 */
import { createPgliteDb } from './pglite.js';

const db = await createPgliteDb(process.argv[2]);
await db.close();
