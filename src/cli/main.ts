import { systemClock } from '../core/clock.js';
import { toError } from '../core/errors.js';
import { ConfigError, loadConfig, parseFlags, SETTINGS, type Config } from '../config/config.js';
import { createLogger } from '../config/logger.js';
import { migrate } from '../store/migrate.js';
import { DataDirInUseError, openDb } from '../store/open.js';
import {
  createToken,
  ensureUser,
  listTokens,
  revokeToken,
  TOKEN_SCOPES,
  type TokenScope,
} from '../store/tokens.js';
import { serve } from './serve.js';

const USAGE = `oms-hooks: the OMS webhook event service

Usage:
  oms-hooks serve [--port N] [--host H] [--role all|api|worker|maintenance] ...
  oms-hooks migrate
  oms-hooks token create --username NAME [--scope read|write|admin] [--admin] [--name LABEL]
  oms-hooks token list
  oms-hooks token revoke --id N

Settings (flag / environment variable):
${SETTINGS.map((s) => `  --${s.flag.padEnd(24)} ${s.env.padEnd(24)} ${s.help}`).join('\n')}
`;

async function withDb<T>(
  config: Config,
  fn: (db: Awaited<ReturnType<typeof openDb>>) => Promise<T>,
): Promise<T> {
  const db = await openDb(config);
  try {
    await migrate(db);
    return await fn(db);
  } finally {
    await db.close();
  }
}

export async function main(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const extra = {
    username: { type: 'string' as const },
    admin: { type: 'boolean' as const },
    name: { type: 'string' as const },
    id: { type: 'string' as const },
    scope: { type: 'string' as const },
    help: { type: 'boolean' as const },
  };
  const { values, positionals } = parseFlags(argv, extra);
  const [command, sub] = positionals;
  if (values.help || !command) {
    process.stdout.write(USAGE);
    return command || values.help ? 0 : 2;
  }
  const config = loadConfig(env, values as Record<string, string | boolean | undefined>);

  switch (command) {
    case 'serve':
      return serve(config, createLogger(config.logLevel), systemClock);
    case 'migrate': {
      const db = await openDb(config);
      try {
        const { applied } = await migrate(db);
        process.stdout.write(
          applied.length ? `applied: ${applied.join(', ')}\n` : 'database is up to date\n',
        );
      } finally {
        await db.close();
      }
      return 0;
    }
    case 'token':
      return withDb(config, async (db) => {
        if (sub === 'create') {
          const username = values.username as string | undefined;
          if (!username) throw new ConfigError('token create needs --username NAME');
          const scope = values.scope as string | undefined;
          if (scope !== undefined && !TOKEN_SCOPES.includes(scope as TokenScope))
            throw new ConfigError('--scope must be read, write or admin');
          const user = await ensureUser(db, username, values.admin === true || scope === 'admin');
          const { key, info } = await createToken(
            db,
            user.id,
            (values.name as string | undefined) ?? '',
            scope as TokenScope | undefined,
          );
          process.stdout.write(
            `Token for ${user.username} (scope ${info.scope}); it is shown only this once:\n${key}\n`,
          );
          return 0;
        }
        if (sub === 'list') {
          for (const t of await listTokens(db)) {
            process.stdout.write(
              `${t.id}\t${t.user}${t.is_admin ? ' (admin)' : ''}\tscope ${t.scope}\t${t.key_prefix}…\t${t.revoked ? 'revoked' : 'active'}\tlast used ${t.last_used ?? 'never'}\n`,
            );
          }
          return 0;
        }
        if (sub === 'revoke') {
          const id = Number(values.id);
          if (!Number.isInteger(id)) throw new ConfigError('token revoke needs --id N');
          const done = await revokeToken(db, id);
          process.stdout.write(done ? `token ${id} revoked\n` : `no active token ${id}\n`);
          return done ? 0 : 1;
        }
        throw new ConfigError('token: use create, list or revoke');
      });
    default:
      throw new ConfigError(`unknown command "${command}"; run oms-hooks --help`);
  }
}

/**
 * An error of the machine (a port in use, a directory that cannot be made, a server that
 * refuses the connection) or of reaching PostgreSQL (no such database, a login refused,
 * a server starting up or full): what it says is the whole story, and a stack through
 * Node's or pg's internals would only bury it.
 */
function fromOutside(error: Error): boolean {
  const { code, syscall } = error as { code?: unknown; syscall?: unknown };
  if (typeof code !== 'string') return false;
  if (typeof syscall === 'string') return true;
  return /^(08|28)/.test(code) || ['3D000', '57P03', '53300'].includes(code);
}

main(process.argv.slice(2), process.env).then(
  (code) => {
    process.exitCode = code;
  },
  (caught: unknown) => {
    const error = toError(caught);
    const known =
      error instanceof ConfigError ||
      error instanceof DataDirInUseError ||
      (error as { code?: string }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION';
    const plain = known || fromOutside(error);
    process.stderr.write(`oms-hooks: ${plain ? error.message : (error.stack ?? error.message)}\n`);
    process.exitCode = known ? 2 : 1;
  },
);
