import type { Clock } from '../core/clock.js';
import { TtlCache } from '../core/ttl-cache.js';
import { findContentType, type ContentType } from '../store/catalog.js';
import type { Queryable } from '../store/db.js';
import { authenticateHash, hashKey, type User } from '../store/tokens.js';
import {
  getOwnedWebhook,
  inScope,
  type OwnedWebhook,
  type Scope,
  type WebhookJson,
} from '../store/webhooks.js';

/** How long a token, webhook or content type read for a request serves later ones. */
export const LOOKUP_TTL_MS = 1_000;

/**
 * The reads every request (token) or every publish (webhook, content type) makes, kept
 * for a second so that a stream of publishes costs the database one insert each, not
 * three lookups and an insert. Each app has its own.
 *
 * Staleness is bounded by the TTL and, for writes made through this process's API, by
 * nothing: the routes that change a token, a webhook or a content type invalidate here
 * at once. Writes made elsewhere show after at most `ttlMs`: `oms-hooks token revoke`
 * or another API process revoking a token, a worker deactivating a webhook after a 410,
 * maintenance auto-disabling one. A webhook deleted elsewhere meanwhile fails the insert
 * on its reference check (a foreign key's violation, migration 012), which publish
 * answers as if it had never been found.
 *
 * Only hits are cached. A key that matched nothing is looked up again next time, so a
 * token created in another process works at once, and guessing keys cannot fill the
 * cache and push valid tokens out. The token cache is keyed by the key's SHA-256, never
 * the key: a heap dump holds no usable key, as a database dump holds none.
 */
export class Lookups {
  private readonly tokens: TtlCache<string, User>;
  private readonly webhooks: TtlCache<number, OwnedWebhook>;
  private readonly contentTypes: TtlCache<string, ContentType>;

  constructor(
    private readonly db: Queryable,
    clock: Clock,
    ttlMs: number = LOOKUP_TTL_MS,
  ) {
    this.tokens = new TtlCache(clock, { ttlMs, maxSize: 10_000 });
    this.webhooks = new TtlCache(clock, { ttlMs, maxSize: 10_000 });
    this.contentTypes = new TtlCache(clock, { ttlMs, maxSize: 1_000 });
  }

  /**
   * The user of an API key. A miss runs the query that also refreshes `last_used` (at
   * most once a minute), so a token in steady use still has it refreshed: a cached
   * entry expires every `ttlMs` and the next request reads the database again.
   */
  authenticate(key: string): Promise<User | undefined> {
    const hash = hashKey(key);
    return this.tokens.load(hash, async () => {
      const user = await authenticateHash(this.db, hash);
      return user && Object.freeze(user);
    });
  }

  /** A webhook `scope` may see, as `getWebhook` would answer; one cached copy per id. */
  async webhook(scope: Scope, id: number): Promise<WebhookJson | undefined> {
    const owned = await this.webhooks.load(id, () => getOwnedWebhook(this.db, id));
    return owned && inScope(scope, owned.userId) ? owned.webhook : undefined;
  }

  contentType(model: string): Promise<ContentType | undefined> {
    return this.contentTypes.load(model, () => findContentType(this.db, model));
  }

  /** A token was created or revoked here (creating one can make its user an admin). */
  tokensChanged(): void {
    this.tokens.clear();
  }

  /** A webhook was updated, deleted, rotated or deactivated here. */
  webhookChanged(id: number): void {
    this.webhooks.delete(id);
  }

  contentTypesChanged(): void {
    this.contentTypes.clear();
  }
}
