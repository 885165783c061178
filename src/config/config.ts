import { isIP } from 'node:net';
import { parseArgs } from 'node:util';
import { isDatabaseUrl } from '../core/database-url.js';

/**
 * Configuration: defaults, then environment, then command-line flags, validated once
 * into a frozen object. Nothing here reads the environment at import time.
 */
export type Role = 'all' | 'api' | 'worker' | 'maintenance';

export interface Config {
  readonly port: number;
  readonly host: string;
  /** PostgreSQL when set; otherwise the embedded PGlite database in dataDir. */
  readonly databaseUrl: string | undefined;
  readonly dataDir: string;
  readonly role: Role;
  readonly logLevel: string;
  /** Permits loopback and private-network targets (local testing). */
  readonly allowPrivateTargets: boolean;
  readonly requestTimeoutMs: number;
  /** How much of a target's response body is read and kept. */
  readonly responseCapBytes: number;
  readonly bodyLimitBytes: number;
  readonly defaultMaxRetries: number;
  readonly workerBatchSize: number;
  readonly workerConcurrency: number;
  /**
   * With role `all`, how many separate processes deliver (0: this process does). `auto`
   * is one on PostgreSQL with two or more CPUs, else 0 (PGlite allows one process).
   */
  readonly workerProcesses: number | 'auto';
  readonly pollIntervalMs: number;
  readonly leaseMs: number;
  readonly maxPageSize: number;
  /** Base URL used in pagination links when set (behind a proxy); else the request's Host. */
  readonly publicUrl: string | undefined;
  /** Workers report every heartbeatMs; one unseen for three periods is dead. */
  readonly heartbeatMs: number;
  /** How often maintenance runs retention, auto-disable and vacuum (lease rescue follows heartbeatMs). */
  readonly maintenanceIntervalMs: number;
  /** Hook events older than this are purged; 0 keeps them forever. */
  readonly retentionDays: number;
  /** A webhook failing for this long is deactivated; 0 never deactivates. */
  readonly autoDisableDays: number;
  /** On SIGTERM/SIGINT, how long in-flight attempts may take before their leases are released. */
  readonly shutdownGraceMs: number;
  /** Ranges a target may be in even though they are private (the SSRF guard stays on). */
  readonly allowedTargetCidrs: readonly string[];
  /** Requests per second per API token (burst twice that); 0 turns the limit off. */
  readonly rateLimitPerSecond: number;
  /** Largest request_payload publish and emit accept (413 above). */
  readonly maxPayloadBytes: number;
  /**
   * Payload bytes that publishes accepted and not yet committed may hold; beyond it a
   * publish gets 503 with Retry-After instead of waiting. 0 turns the limit off.
   */
  readonly publishBufferBytes: number;
}

export const DEFAULTS: Config = Object.freeze({
  port: 8000,
  host: '127.0.0.1',
  databaseUrl: undefined,
  dataDir: './data',
  role: 'all',
  logLevel: 'info',
  allowPrivateTargets: false,
  requestTimeoutMs: 10_000,
  responseCapBytes: 64 * 1024,
  bodyLimitBytes: 1024 * 1024,
  defaultMaxRetries: 18,
  workerBatchSize: 200,
  workerConcurrency: 100,
  workerProcesses: 'auto',
  pollIntervalMs: 1_000,
  leaseMs: 60_000,
  maxPageSize: 1_000,
  publicUrl: undefined,
  heartbeatMs: 2_000,
  maintenanceIntervalMs: 60_000,
  retentionDays: 84,
  autoDisableDays: 5,
  shutdownGraceMs: 10_000,
  allowedTargetCidrs: Object.freeze([]) as readonly string[],
  rateLimitPerSecond: 200,
  maxPayloadBytes: 256 * 1024,
  publishBufferBytes: 32 * 1024 * 1024,
});

type Kind = 'int' | 'string' | 'bool' | 'role' | 'url' | 'database' | 'cidrs' | 'processes';
interface Setting {
  key: keyof Config;
  env: string;
  flag: string;
  kind: Kind;
  help: string;
}

/** Every setting, its environment variable and its flag: the README's reference table. */
export const SETTINGS: readonly Setting[] = [
  { key: 'port', env: 'PORT', flag: 'port', kind: 'int', help: 'HTTP port' },
  { key: 'host', env: 'HOST', flag: 'host', kind: 'string', help: 'HTTP bind address' },
  {
    key: 'databaseUrl',
    env: 'DATABASE_URL',
    flag: 'database-url',
    kind: 'database',
    help: 'PostgreSQL URL; unset = embedded PGlite',
  },
  {
    key: 'dataDir',
    env: 'DATA_DIR',
    flag: 'data-dir',
    kind: 'string',
    help: 'PGlite data directory',
  },
  {
    key: 'role',
    env: 'ROLE',
    flag: 'role',
    kind: 'role',
    help: 'all | api | worker | maintenance',
  },
  { key: 'logLevel', env: 'LOG_LEVEL', flag: 'log-level', kind: 'string', help: 'pino level' },
  {
    key: 'allowPrivateTargets',
    env: 'ALLOW_PRIVATE_TARGETS',
    flag: 'allow-private-targets',
    kind: 'bool',
    help: 'permit loopback/private target URLs',
  },
  {
    key: 'requestTimeoutMs',
    env: 'REQUEST_TIMEOUT_MS',
    flag: 'request-timeout-ms',
    kind: 'int',
    help: 'default timeout of a delivery',
  },
  {
    key: 'responseCapBytes',
    env: 'RESPONSE_CAP_BYTES',
    flag: 'response-cap-bytes',
    kind: 'int',
    help: 'bytes of a response body kept',
  },
  {
    key: 'bodyLimitBytes',
    env: 'BODY_LIMIT_BYTES',
    flag: 'body-limit-bytes',
    kind: 'int',
    help: 'largest accepted request body',
  },
  {
    key: 'defaultMaxRetries',
    env: 'DEFAULT_MAX_RETRIES',
    flag: 'default-max-retries',
    kind: 'int',
    help: 'attempts per event unless config.max_retries says otherwise',
  },
  {
    key: 'workerBatchSize',
    env: 'WORKER_BATCH_SIZE',
    flag: 'worker-batch-size',
    kind: 'int',
    help: 'events claimed at once, and kept ready ahead of the slots',
  },
  {
    key: 'workerConcurrency',
    env: 'WORKER_CONCURRENCY',
    flag: 'worker-concurrency',
    kind: 'int',
    help: 'requests in flight per worker',
  },
  {
    key: 'workerProcesses',
    env: 'WORKER_PROCESSES',
    flag: 'worker-processes',
    kind: 'processes',
    help: 'with role all: worker processes beside the API (auto, or a number)',
  },
  {
    key: 'pollIntervalMs',
    env: 'POLL_INTERVAL_MS',
    flag: 'poll-interval-ms',
    kind: 'int',
    help: 'fallback poll when no wake-up arrives',
  },
  {
    key: 'leaseMs',
    env: 'LEASE_MS',
    flag: 'lease-ms',
    kind: 'int',
    help: 'how long a claimed event stays locked',
  },
  {
    key: 'maxPageSize',
    env: 'MAX_PAGE_SIZE',
    flag: 'max-page-size',
    kind: 'int',
    help: 'largest page_size a list accepts',
  },
  {
    key: 'publicUrl',
    env: 'PUBLIC_URL',
    flag: 'public-url',
    kind: 'url',
    help: 'base URL for pagination links',
  },
  {
    key: 'heartbeatMs',
    env: 'HEARTBEAT_MS',
    flag: 'heartbeat-ms',
    kind: 'int',
    help: 'worker heartbeat; unseen for 3 periods = dead',
  },
  {
    key: 'maintenanceIntervalMs',
    env: 'MAINTENANCE_INTERVAL_MS',
    flag: 'maintenance-interval-ms',
    kind: 'int',
    help: 'how often retention, auto-disable and vacuum run',
  },
  {
    key: 'retentionDays',
    env: 'RETENTION_DAYS',
    flag: 'retention-days',
    kind: 'int',
    help: 'purge events older than this (0 = keep)',
  },
  {
    key: 'autoDisableDays',
    env: 'AUTO_DISABLE_DAYS',
    flag: 'auto-disable-days',
    kind: 'int',
    help: 'deactivate a webhook failing this long (0 = never)',
  },
  {
    key: 'shutdownGraceMs',
    env: 'SHUTDOWN_GRACE_MS',
    flag: 'shutdown-grace-ms',
    kind: 'int',
    help: 'time in-flight attempts get on shutdown',
  },
  {
    key: 'allowedTargetCidrs',
    env: 'ALLOWED_TARGET_CIDRS',
    flag: 'allowed-target-cidrs',
    kind: 'cidrs',
    help: 'private ranges targets may use, e.g. 10.1.0.0/16,fd00::/8',
  },
  {
    key: 'rateLimitPerSecond',
    env: 'RATE_LIMIT_PER_SECOND',
    flag: 'rate-limit-per-second',
    kind: 'int',
    help: 'API requests per second per token (0 = no limit)',
  },
  {
    key: 'maxPayloadBytes',
    env: 'MAX_PAYLOAD_BYTES',
    flag: 'max-payload-bytes',
    kind: 'int',
    help: 'largest event payload accepted at publish',
  },
  {
    key: 'publishBufferBytes',
    env: 'PUBLISH_BUFFER_BYTES',
    flag: 'publish-buffer-bytes',
    kind: 'int',
    help: 'payload bytes awaiting their write before publish answers 503 (0 = off)',
  },
];

export class ConfigError extends Error {
  override name = 'ConfigError';
}

function convert(setting: Setting, raw: string | boolean): unknown {
  const where = `${setting.env} / --${setting.flag}`;
  switch (setting.kind) {
    case 'bool': {
      if (typeof raw === 'boolean') return raw;
      const v = raw.trim().toLowerCase();
      if (['1', 'true', 'yes', 'on'].includes(v)) return true;
      if (['0', 'false', 'no', 'off', ''].includes(v)) return false;
      throw new ConfigError(`${where}: expected true or false, got "${raw}"`);
    }
    case 'int': {
      const n = Number(raw);
      if (!Number.isInteger(n) || n < 0)
        throw new ConfigError(`${where}: expected a non-negative integer, got "${String(raw)}"`);
      return n;
    }
    case 'processes': {
      if (String(raw).trim() === 'auto') return 'auto';
      return convert({ ...setting, kind: 'int' }, raw);
    }
    case 'role': {
      if (!['all', 'api', 'worker', 'maintenance'].includes(String(raw))) {
        throw new ConfigError(
          `${where}: expected all, api, worker or maintenance, got "${String(raw)}"`,
        );
      }
      return raw;
    }
    case 'url': {
      const v = String(raw).trim();
      if (v === '') return undefined;
      try {
        new URL(v);
      } catch {
        throw new ConfigError(`${where}: not a valid URL`);
      }
      return v;
    }
    case 'database': {
      const v = String(raw).trim();
      if (v === '') return undefined;
      if (!isDatabaseUrl(v))
        throw new ConfigError(
          `${where}: not a PostgreSQL URL (postgres://user@host/db, or postgres://user@/db?host=/run/postgresql for a Unix socket)`,
        );
      return v;
    }
    case 'string':
      return String(raw);
    case 'cidrs': {
      const list = String(raw)
        .split(',')
        .map((c) => c.trim())
        .filter(Boolean);
      for (const cidr of list) {
        const match = /^([^/]+)\/(\d{1,3})$/.exec(cidr);
        const family = match ? isIP(match[1]!) : 0;
        if (!match || family === 0 || Number(match[2]) > (family === 4 ? 32 : 128))
          throw new ConfigError(`${where}: "${cidr}" is not a CIDR range like 10.0.0.0/8`);
      }
      return Object.freeze(list);
    }
  }
}

/** Flags every command accepts; commands may add their own through `extra`. */
export function parseFlags(
  argv: readonly string[],
  extra: Record<string, { type: 'string' | 'boolean' }> = {},
) {
  const options: Record<string, { type: 'string' | 'boolean' }> = { ...extra };
  for (const s of SETTINGS) options[s.flag] = { type: s.kind === 'bool' ? 'boolean' : 'string' };
  return parseArgs({ args: [...argv], options, allowPositionals: true, strict: true });
}

export function loadConfig(
  env: Record<string, string | undefined>,
  flags: Record<string, string | boolean | undefined> = {},
): Config {
  const out: Record<string, unknown> = { ...DEFAULTS };
  for (const s of SETTINGS) {
    const fromEnv = env[s.env];
    if (fromEnv !== undefined) out[s.key] = convert(s, fromEnv);
    const fromFlag = flags[s.flag];
    if (fromFlag !== undefined) out[s.key] = convert(s, fromFlag);
  }
  const config = out as unknown as Config;
  if (config.port > 65535) throw new ConfigError('PORT / --port: must be at most 65535');
  if (config.leaseMs <= config.requestTimeoutMs) {
    throw new ConfigError(
      'LEASE_MS must be longer than REQUEST_TIMEOUT_MS: a lease has to outlive the request it covers',
    );
  }
  if (config.workerBatchSize < 1 || config.workerConcurrency < 1) {
    throw new ConfigError('WORKER_BATCH_SIZE and WORKER_CONCURRENCY must be at least 1');
  }
  if (config.heartbeatMs < 1 || config.maintenanceIntervalMs < 1) {
    throw new ConfigError('HEARTBEAT_MS and MAINTENANCE_INTERVAL_MS must be at least 1');
  }
  return Object.freeze(config);
}
