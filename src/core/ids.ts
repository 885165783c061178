import { randomUUID } from 'node:crypto';

/** Event uuids travel dashed in the API and as bare hex inside request_payload. */
export function newEventUuid(): string {
  return randomUUID();
}

export function uuidHex(uuid: string): string {
  return uuid.replaceAll('-', '').toLowerCase();
}

const DASHED = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const HEX = /^[0-9a-f]{32}$/i;

/** Accepts a uuid with or without dashes; returns it dashed and lower-case, or null. */
export function normaliseUuid(value: string): string | null {
  const v = value.trim();
  if (DASHED.test(v)) return v.toLowerCase();
  if (HEX.test(v)) {
    const h = v.toLowerCase();
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }
  return null;
}
