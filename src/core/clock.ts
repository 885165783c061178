/**
 * Time as the service sees it. Everything that schedules or records an attempt asks a
 * Clock, so tests drive retry schedules by moving a clock instead of sleeping.
 * `now()` is epoch milliseconds with a fractional part (microsecond resolution), so
 * recorded times keep the microseconds the API shows.
 */
export interface Clock {
  now(): number;
}

export const systemClock: Clock = {
  now: () => performance.timeOrigin + performance.now(),
};

/** A clock that only moves when told to; for tests and tools. */
export class ManualClock implements Clock {
  private current: number;

  constructor(start: number = Date.now()) {
    this.current = start;
  }

  now(): number {
    return this.current;
  }

  advance(ms: number): void {
    this.current += ms;
  }

  set(ms: number): void {
    this.current = ms;
  }
}

/**
 * ISO-8601 in UTC with six fractional digits, e.g. 2024-02-19T08:12:18.591206Z: the
 * format the OMS API uses, and a literal PostgreSQL parses into a timestamptz exactly.
 */
export function isoMicro(epochMs: number): string {
  const wholeMs = Math.floor(epochMs);
  const micros = Math.min(999, Math.max(0, Math.round((epochMs - wholeMs) * 1000)));
  const base = new Date(wholeMs).toISOString(); // ...T08:12:18.591Z
  return `${base.slice(0, -1)}${String(micros).padStart(3, '0')}Z`;
}
