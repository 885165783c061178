/**
 * PostgreSQL connection strings as the `pg` driver reads them, which is more than the
 * WHATWG URL parser takes. libpq's way to reach a server through its Unix socket,
 * `postgres://user@/db?host=/run/postgresql`, has a user but no host, which `new URL`
 * refuses; pg reads it with a stand-in host, and so does this module. A bare socket
 * directory (`/run/postgresql db`) is pg's other form; it has no URL parameters.
 */

/** Stands in for the empty host of libpq's socket URLs while they are parsed. */
const NO_HOST = 'oms-hooks-no-host.invalid';

export interface DatabaseUrl {
  url: URL;
  /** The string had no host (`user@/db`): written back, it has none again. */
  hostless: boolean;
}

/** The URL in a connection string, or undefined for a socket directory or no URL. */
export function parseDatabaseUrl(connectionString: string): DatabaseUrl | undefined {
  try {
    return { url: new URL(connectionString), hostless: false };
  } catch {
    // not a WHATWG URL; maybe one of libpq's with no host
  }
  if (!connectionString.includes('@/')) return undefined;
  try {
    const url = new URL(connectionString.replace('@/', `@${NO_HOST}/`));
    return { url, hostless: true };
  } catch {
    return undefined;
  }
}

export function formatDatabaseUrl({ url, hostless }: DatabaseUrl): string {
  const text = url.toString();
  return hostless ? text.replace(`@${NO_HOST}/`, '@/') : text;
}

/** True for what pg can connect with: a URL, one with no host, or a socket directory. */
export function isDatabaseUrl(connectionString: string): boolean {
  return connectionString.startsWith('/') || parseDatabaseUrl(connectionString) !== undefined;
}

/**
 * The connection string with server options (`-c name=value ...`) in its `options`
 * parameter, after any it had; a socket directory cannot carry them.
 */
export function withServerOptions(connectionString: string, options: string): string {
  const parsed = parseDatabaseUrl(connectionString);
  if (!parsed) throw new Error('server options need a URL, not a socket directory');
  const given = parsed.url.searchParams.get('options');
  parsed.url.searchParams.set('options', given ? `${given} ${options}` : options);
  return formatDatabaseUrl(parsed);
}
