import { hash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Db, Queryable } from './db.js';

/**
 * Users and their API tokens. A token key is 40 hex characters (the shape DRF clients
 * expect); only its SHA-256 is stored, so a database dump holds no usable key.
 */
export interface User {
  id: number;
  username: string;
  /** True only for an admin user's admin-scoped token. */
  isAdmin: boolean;
  /** The token this request came with, and what it may do. */
  tokenId?: number;
  scope?: TokenScope;
}

/**
 * read: GET only, own resources, secrets masked. write: its user's own resources.
 * admin: everything (only an admin user's token has it).
 */
export type TokenScope = 'read' | 'write' | 'admin';
export const TOKEN_SCOPES: readonly TokenScope[] = ['read', 'write', 'admin'];

export interface TokenInfo {
  id: number;
  user: string;
  is_admin: boolean;
  name: string;
  key_prefix: string;
  created_date: string;
  last_used: string | null;
  revoked: boolean;
  scope: TokenScope;
}

/**
 * A key's SHA-256 in hex, what api_tokens.key_hash holds. Every API request hashes its
 * key (the token cache is keyed by the hash), so this is Node's one-shot `hash` rather
 * than a `Hash` object made, fed and read for each key: 0.8 µs against 2.1 in a loop
 * here, and a `Hash` object's making and reading held 3.3% of an API process's samples
 * under publish load (`--cpu-prof`, 38.5% of them idle).
 */
export const hashKey = (key: string): string => hash('sha256', key, 'hex');

export async function ensureUser(db: Queryable, username: string, isAdmin: boolean): Promise<User> {
  const { rows } = await db.query<{ id: number; username: string; is_admin: boolean }>(
    `insert into users (username, is_admin) values ($1, $2)
     on conflict (username) do update set is_admin = users.is_admin or excluded.is_admin
     returning id, username, is_admin`,
    [username, isAdmin],
  );
  const row = rows[0]!;
  return { id: row.id, username: row.username, isAdmin: row.is_admin };
}

/**
 * On a database with no user at all, the `admin` user and a token for it, made in one
 * transaction, and the token's key; else nothing. Of two processes that start at once
 * on an empty database, both find no user, but the insert of the second waits for the
 * first's commit on the username and then inserts nothing: only one of them gets a key
 * to print. A check of the count first, then an upsert, gave both a token.
 */
export async function createFirstAdmin(db: Db): Promise<string | undefined> {
  return db.transaction(async (tx) => {
    const { rows } = await tx.query<{ id: number }>(
      `insert into users (username, is_admin)
       select 'admin', true where not exists (select 1 from users)
       on conflict (username) do nothing
       returning id`,
    );
    if (rows.length === 0) return undefined;
    return (await createToken(tx, rows[0]!.id, 'first start')).key;
  });
}

/**
 * Creates a token for the user; the returned key is never retrievable again. Without a
 * scope, an admin user's token is admin and anyone else's write.
 */
export async function createToken(
  db: Queryable,
  userId: number,
  name = '',
  scope?: TokenScope,
): Promise<{ key: string; info: TokenInfo }> {
  const key = randomBytes(20).toString('hex');
  const { rows } = await db.query<{ id: number }>(
    `insert into api_tokens (user_id, key_hash, key_prefix, name, scope)
     select $1, $2, $3, $4, coalesce($5::text, case when u.is_admin then 'admin' else 'write' end)
     from users u where u.id = $1
     returning id`,
    [userId, hashKey(key), key.slice(0, 8), name, scope ?? null],
  );
  const info = await getToken(db, rows[0]!.id);
  return { key, info: info! };
}

const TOKEN_COLUMNS = `t.id, u.username as user, (u.is_admin and t.scope = 'admin') as is_admin, t.name, t.key_prefix,
  oms_ts(t.created_date) as created_date, oms_ts(t.last_used) as last_used,
  t.revoked_date is not null as revoked, t.scope`;

export async function getToken(db: Queryable, id: number): Promise<TokenInfo | undefined> {
  const { rows } = await db.query<TokenInfo>(
    `select ${TOKEN_COLUMNS} from api_tokens t join users u on u.id = t.user_id where t.id = $1`,
    [id],
  );
  return rows[0];
}

export async function listTokens(db: Queryable): Promise<TokenInfo[]> {
  const { rows } = await db.query<TokenInfo>(
    `select ${TOKEN_COLUMNS} from api_tokens t join users u on u.id = t.user_id order by t.id`,
  );
  return rows;
}

export async function revokeToken(db: Queryable, id: number): Promise<boolean> {
  const { rowCount } = await db.query(
    `update api_tokens set revoked_date = now() where id = $1 and revoked_date is null`,
    [id],
  );
  return rowCount > 0;
}

/**
 * Finds the user of a key. The database finds the row by the key's SHA-256, so what an
 * attacker controls (the key) is never compared to a secret byte by byte: learning how
 * many leading bytes of a hash matched tells nothing about the key that would produce
 * the next one. The hash found is compared again with timingSafeEqual anyway, so the
 * constant time does not rest on how an index compares text. `last_used` is refreshed
 * at most once a minute to keep reads from writing on every request.
 */
export async function authenticate(db: Queryable, key: string): Promise<User | undefined> {
  return authenticateHash(db, hashKey(key));
}

/** `authenticate` for a key already hashed with `hashKey` (the API's token cache is keyed by it). */
export async function authenticateHash(db: Queryable, hash: string): Promise<User | undefined> {
  const { rows } = await db.query<{
    token_id: number;
    key_hash: string;
    id: number;
    username: string;
    is_admin: boolean;
    scope: TokenScope;
  }>(
    `with hit as (
       select t.id as token_id, t.key_hash, t.scope, u.id, u.username, u.is_admin, t.last_used
       from api_tokens t join users u on u.id = t.user_id
       where t.key_hash = $1 and t.revoked_date is null
     ), touch as (
       update api_tokens set last_used = now()
       where id = (select token_id from hit)
         and (last_used is null or last_used < now() - interval '1 minute')
     )
     select token_id, key_hash, scope, id, username, is_admin from hit`,
    [hash],
  );
  const row = rows[0];
  if (!row || !timingSafeEqual(Buffer.from(row.key_hash), Buffer.from(hash))) return undefined;
  return {
    id: row.id,
    username: row.username,
    isAdmin: row.is_admin && row.scope === 'admin',
    tokenId: row.token_id,
    scope: row.scope,
  };
}
