/**
 * Whether an attempt answered with `status` delivered its event: a 2xx, and nothing else
 * (redirects are not followed; no response is a failure). The one rule for it: the
 * worker's outcomes take `delivered` from it, and the reads rely on it, since only an
 * attempt writes an event's status, and its `delivered` with it: an event whose status
 * is anything else is an undelivered one, attempted (listHookEvents).
 */
export const isDeliveredStatus = (status: number | null): boolean =>
  status !== null && status >= 200 && status < 300;
