/**
 * Credentials in a webhook's `config.auth` are write-only: responses show them as a
 * mask, and a mask sent back on update keeps the stored value (so a client can PUT
 * what it GOT without erasing a password it never saw).
 */
export const CREDENTIAL_MASK = '********';

/** Fields of `config.auth` that hold a credential; every value of `body` does too. */
const SECRET_FIELDS = new Set(['password', 'secret', 'client_secret', 'token', 'api_key']);

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

function maskAuth(auth: Json): Json {
  const out: Json = {};
  for (const [key, value] of Object.entries(auth)) {
    if (SECRET_FIELDS.has(key) && value !== undefined && value !== null) out[key] = CREDENTIAL_MASK;
    else if (key === 'body' && isObject(value)) {
      out[key] = Object.fromEntries(Object.keys(value).map((k) => [k, CREDENTIAL_MASK]));
    } else out[key] = value;
  }
  return out;
}

/** The config as responses show it. */
export function maskConfig<T extends Json>(config: T): T {
  return isObject(config.auth) ? { ...config, auth: maskAuth(config.auth) } : config;
}

/** `incoming` with every masked credential replaced by the stored one. */
export function restoreMasked<T extends Json>(incoming: T, stored: Json | undefined): T {
  if (!isObject(incoming.auth)) return incoming;
  const storedAuth = isObject(stored?.auth) ? stored.auth : {};
  const auth: Json = { ...incoming.auth };
  for (const [key, value] of Object.entries(auth)) {
    if (value === CREDENTIAL_MASK) auth[key] = storedAuth[key];
    else if (key === 'body' && isObject(value)) {
      const storedBody = isObject(storedAuth.body) ? storedAuth.body : {};
      auth[key] = Object.fromEntries(
        Object.entries(value).map(([k, v]) => [k, v === CREDENTIAL_MASK ? storedBody[k] : v]),
      );
    }
  }
  return { ...incoming, auth };
}
