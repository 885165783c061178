import { setFlagsFromString } from 'node:v8';

/**
 * V8 grows a heap after a full collection by half of what survived it, instead of its
 * default of up to four times. The service's per-event data (a request, its event, the
 * attempt) lives long enough to reach the old generation, and V8 let that pile up to
 * three or four times the live heap before collecting it. Worker processes start with
 * it as a node flag (WORKER_NODE_FLAGS); the process that runs the embedded database,
 * which is the whole service on PGlite, sets it as it starts (growHeapsByHalf).
 */
export const HEAP_GROWS_BY_HALF = '--heap-growing-percent=50';

/**
 * Sets HEAP_GROWS_BY_HALF in this process, for every heap in it, the database thread's
 * included (a V8 flag is the whole process's). V8 reads it at each full collection, so
 * set early it does what the node flag does. Draining 300,000 events on PGlite
 * (`PROBE_DB=pglite bench/backlog-probe.ts 300000`) peaked at 249-254 MB in six runs,
 * three with the node flag and three with this call, against 256-308 MB in nine runs
 * without either, at the same rate (6,053-7,674/s against 6,168-7,798/s); publishing
 * while delivering read 2,898-3,023/s against 2,644-2,969/s (three alternated pairs).
 */
export function growHeapsByHalf(): void {
  setFlagsFromString(HEAP_GROWS_BY_HALF);
}
