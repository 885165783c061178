import type { RetryCountdownConfig } from '../core/retry.js';
import type { Db, Queryable } from '../store/db.js';
import type { WebhookConfig } from '../store/webhooks.js';

/** What a worker needs to make one attempt. */
export interface ClaimedEvent {
  id: number;
  uuid: string;
  eventType: string;
  /** request_payload exactly as stored, sent byte for byte (large numbers stay exact). */
  body: string;
  retryCount: number;
  maxAttempts: number;
  /**
   * Its queue row's run_at when a claim took it (as oms_ts writes it): with the id,
   * where it stood in its webhook's queue (see ClaimCursors). Events handed over by a
   * publish have none.
   */
  runAt?: string;
  webhook: {
    id: number;
    targetUrl: string;
    secretKey: string;
    isActive: boolean;
    callback: string | null;
    additionalHeaders: Record<string, string>;
    config: WebhookConfig;
    retryCountdownConfig: RetryCountdownConfig;
    /** The secret a rotation replaced; it signs too until it expires. */
    previousSecretKey?: string | null;
    previousSecretExpiresAt?: string | null;
  };
}

/**
 * A claimed event as a statement returns it. Where the settings come with a webhook's
 * first event only (see sharingWebhooks), `target_url` and the columns after it are
 * null on the others.
 */
export interface ClaimRow {
  id: number;
  uuid: string;
  event_type: string;
  body: string;
  retry_count: number | null;
  max_attempts: number | null;
  run_at?: string | null;
  webhook_id: number;
  target_url: string | null;
  secret_key: string;
  is_active: boolean;
  callback: string | null;
  additional_headers: Record<string, string>;
  config: WebhookConfig;
  retry_countdown_config: RetryCountdownConfig;
  previous_secret_key: string | null;
  previous_secret_expires_at: string | null;
}

/** A webhook's settings as a claim reads them, from `webhooks w`. */
export const WEBHOOK_COLUMNS = `w.target_url, w.secret_key, w.is_active, w.callback, w.additional_headers,
  w.config, w.retry_countdown_config,
  w.previous_secret_key, oms_ts(w.previous_secret_expires_at) as previous_secret_expires_at`;

const EVENT_COLUMNS = `e.id, e.uuid, e.event_type, p.request_payload::text as body, e.retry_count,
  w.id as webhook_id, ${WEBHOOK_COLUMNS}`;

/** A row as an event, with its webhook's settings as already read. */
const toClaimed = (
  r: ClaimRow,
  defaultMaxAttempts: number,
  webhook: ClaimedEvent['webhook'],
): ClaimedEvent => ({
  id: r.id,
  uuid: r.uuid,
  eventType: r.event_type,
  body: r.body,
  retryCount: r.retry_count ?? 0,
  maxAttempts: r.max_attempts ?? defaultMaxAttempts,
  ...(r.run_at ? { runAt: r.run_at } : {}),
  webhook,
});

/**
 * Rows in id order, where each webhook's settings come with its first row only (null
 * on the others), as events: the events of a webhook share one settings object, so
 * they are read and parsed once per webhook (three jsonb columns among them), and a
 * message to a worker process carries them once (V8's serializer keeps references). An
 * event whose webhook's first row has no settings (the webhook is gone) is left out.
 */
export function sharingWebhooks(rows: ClaimRow[], defaultMaxAttempts: number): ClaimedEvent[] {
  const webhooks = new Map<number, ClaimedEvent['webhook']>();
  const events: ClaimedEvent[] = [];
  for (const r of rows) {
    if (r.id === null) continue;
    let webhook = webhooks.get(r.webhook_id);
    if (!webhook) {
      if (r.target_url === null) continue;
      webhook = webhookOf(r, r.target_url);
      webhooks.set(r.webhook_id, webhook);
    }
    events.push(toClaimed(r, defaultMaxAttempts, webhook));
  }
  return events;
}

const webhookOf = (r: ClaimRow, targetUrl: string): ClaimedEvent['webhook'] => ({
  id: r.webhook_id,
  targetUrl,
  secretKey: r.secret_key,
  isActive: r.is_active,
  callback: r.callback,
  additionalHeaders: r.additional_headers,
  config: r.config,
  retryCountdownConfig: r.retry_countdown_config,
  previousSecretKey: r.previous_secret_key,
  previousSecretExpiresAt: r.previous_secret_expires_at,
});

export interface ClaimOptions {
  workerId: string;
  /** The claiming clock's time, ISO with microseconds. */
  now: string;
  leaseMs: number;
  limit: number;
  /**
   * This worker's fairness: how many events of one webhook the claim may take
   * (`perWebhook`, default no cap beyond `limit`), and, for the webhooks in `room`, how
   * many more of theirs (what the worker may still hold of them). A webhook with no room
   * is skipped, so one slow target cannot fill every slot.
   */
  perWebhook?: number;
  room?: ReadonlyMap<number, number>;
  /**
   * Where to start reading each webhook's queue: only its rows after this position, in
   * the order claims take them (run_at, then id), are looked at (see ClaimCursors).
   */
  after?: ReadonlyMap<number, QueuePosition>;
  /**
   * Look only at the webhooks in `room`, `after` and `notified`: the ones this worker
   * holds or has claimed from lately, and those a publish said it left events for,
   * instead of every webhook with events queued (a sweep, which descends the queue's
   * index once per such webhook). Ignored through the gate and when there are none.
   */
  knownOnly?: boolean;
  /** Webhooks a publish's NOTIFY named since the last claim (see `knownOnly`). */
  notified?: readonly number[];
}

/** A place in a webhook's queue, in claim order. */
export interface QueuePosition {
  runAt: string;
  id: number;
}

/** Webhooks whose claims go through the gate: they have a limit shared by all workers. */
export const LIMITED = `coalesce(jsonb_typeof(w.config->'max_concurrency') = 'number'
  or jsonb_typeof(w.config->'rate_limit') = 'number' or w.config->'ordered' = 'true'::jsonb, false)`;

/** LIMITED, for a webhook's config as read: whether its claims go through the gate. */
export const hasSharedLimit = (config: WebhookConfig): boolean =>
  typeof config.max_concurrency === 'number' ||
  typeof config.rate_limit === 'number' ||
  config.ordered === true;

/**
 * Webhooks `w` whose limit counts their leases (`max_concurrency`, `ordered`): their
 * leases are marked `gated` (migration 017) for the gate to count.
 */
const COUNTS_LEASES = `coalesce(jsonb_typeof(w.config->'max_concurrency') = 'number'
  or w.config->'ordered' = 'true'::jsonb, false)`;

/**
 * COUNTS_LEASES, for a webhook's config as read: an attempt of such a webhook frees its
 * place only once recorded, so a worker records those without waiting for its tick.
 */
export const countsLeases = (config: WebhookConfig): boolean =>
  typeof config.max_concurrency === 'number' || config.ordered === true;

const DUE = (q: string) =>
  `${q}.run_at <= $1::timestamptz and (${q}.locked_until is null or ${q}.locked_until <= $1::timestamptz)`;

/**
 * An active webhook `w` with a shared limit that has an event due. Asked in the order of
 * the (webhook_id, run_at) index, so that it is looked up there: without an order, a
 * plan may scan the whole queue for a webhook whose events are all leased or not due.
 */
const LIMITED_WAITING = `w.is_active and ${LIMITED}
  and coalesce((select true from hook_event_queue q
                where q.webhook_id = w.id and ${DUE('q')} order by q.run_at limit 1), false)`;

/**
 * A worker's rooms, from the JSON in `param`: per webhook, its room (`n`) and where its
 * last claims got to (`after_run_at`, `after_id`). JSON rather than arrays, because
 * PostgreSQL estimates `unnest` of an array it can see at the array's length: a plan made
 * for the values (one webhook) then always looked cheaper than the generic one (which
 * assumes 100), and a statement driven by the rooms was planned afresh at every claim
 * (`pg_prepared_statements` in the worker's sessions: no generic plan in hundreds),
 * which cost PostgreSQL 10-15 µs more per event drained. `json_to_recordset` is
 * estimated at 100 rows either way, so the generic plan is kept after five.
 */
const roomsCte = (param: string) => `rooms as (
         select * from json_to_recordset(${param}::json)
           as rooms(webhook_id int, n int, after_run_at timestamptz, after_id bigint)
       )`;

/** Queue entries one step of QUEUED_WEBHOOKS reads at most. */
const QUEUED_STEP = 16;

/**
 * `queued`: every webhook with rows in the queue, bar those in `rooms`, found by a skip
 * scan of the queue's (webhook_id, run_at, hook_event_id) index, so that a sweep costs
 * nothing per webhook with nothing queued. It used to probe the queue of every active
 * webhook: with 50,000 idle webhooks beside a busy one, a drain of 100,000 events
 * (`IDLE=50000 bench/backlog-probe.ts 100000`) read 2,665 events/s, with PostgreSQL at
 * 322 µs of CPU per event, against 9,348/s and 38 µs with none.
 *
 * Each step descends the index to the first entry past the last webhook found and reads
 * up to QUEUED_STEP entries on, keeping each webhook's first; the next step starts past
 * the last of them. One descent per webhook made a sweep slower than the old probes
 * where every webhook has something queued (a recursive query's step costs PostgreSQL a
 * few µs): with 5,000 webhooks each holding a retry not due yet, 21 ms a sweep against
 * 10.5 before, and 7.2-8.1 ms with steps of 16 (`WAITING=5000 bench/sweep-probe.ts`).
 *
 * A step walks past the entries of events delivered since the last VACUUM, which stay at
 * the head of a webhook's range until then, to the first row still queued; the claim
 * enters that webhook's range there (`run_at`, `event_id`), not at its head again. The
 * webhooks in `rooms` are fenced off (a step reads only below the next of them, and one
 * that finds nothing there steps onto it, as a `stone`): their claims enter their ranges
 * at their cursors (see ClaimCursors). Ids start below any `integer`.
 */
const QUEUED_WEBHOOKS = `queued(id, stone, run_at, event_id, last) as (
         select (-2147483649)::bigint, true, null::timestamptz, null::bigint, true
         union all
         select coalesce(h.webhook_id, f.next)::bigint, h.webhook_id is null, h.run_at,
                h.hook_event_id, coalesce(h.last, true)
         from queued
         cross join lateral (
           select min(r.webhook_id) as next from rooms r where r.webhook_id > queued.id) f
         left join lateral (
           select distinct on (e.webhook_id) e.webhook_id, e.run_at, e.hook_event_id,
                  e.webhook_id = max(e.webhook_id) over () as last
           from (
             select q.webhook_id, q.run_at, q.hook_event_id from hook_event_queue q
             where q.webhook_id > queued.id
               and q.webhook_id < coalesce(f.next::bigint, 2147483648)
             order by q.webhook_id, q.run_at, q.hook_event_id
             limit ${QUEUED_STEP}
           ) e
           order by e.webhook_id, e.run_at, e.hook_event_id
         ) h on true
         where queued.last and queued.id is not null
       )`;

/**
 * A sweep's webhooks: those in `rooms`, then those QUEUED_WEBHOOKS found, each to be read
 * from its first queued row on (ids are whole numbers: past id - 1 is from id on). A
 * webhook whose first row is not due has no row due, and is not read at all.
 */
const SWEPT = `(select webhook_id, n, after_run_at, after_id from rooms
          union all
          select id, null, run_at, event_id - 1 from queued
          where not stone and run_at <= $1::timestamptz) cand`;

/**
 * The due events of the webhooks in `candidates` (a FROM item named `cand`, with the
 * columns of `rooms`) that are active and without shared limits: the head of each one's
 * own (webhook_id, run_at) range, no more than this worker's room for it, so a webhook
 * with a huge backlog, or one skipped for being at its share, costs nothing to pass
 * over. The index scan starts where the worker's last claims got to (`after_run_at`,
 * `after_id`), past the entries of the events delivered since the last VACUUM, which
 * the index keeps at the head of the range until then. Each webhook is looked up by key
 * (`limit 1`): a join over the 100 rows a plan expects might scan them all. `$2` is the
 * claim's limit, `share` the room of a webhook without `n`, `full` the webhooks with no
 * room at all.
 */
const OPEN_DUE = (candidates: string, share: string, full: string) => `
         select c.hook_event_id, c.webhook_id, c.run_at
         from ${candidates} cross join lateral (
           select w.* from webhooks w where w.id = cand.webhook_id limit 1) w
         cross join lateral (
           select q.hook_event_id, q.webhook_id, q.run_at from hook_event_queue q
           where q.webhook_id = w.id and ${DUE('q')}
             and (q.run_at, q.hook_event_id) >
                 (coalesce(cand.after_run_at, '-infinity'), coalesce(cand.after_id, 0))
           order by q.run_at, q.hook_event_id
           limit greatest(0, least($2, coalesce(cand.n, ${share})))
         ) c
         where w.is_active and not ${LIMITED} and w.id <> all(${full})`;

/**
 * What a claim returns: the claimed events, each with whether a limited webhook among
 * `candidates` (as in OPEN_DUE) is waiting. A claim that took nothing still answers
 * that, in one row of nulls: without it, the worker's next claim would have to go
 * through the gate (a transaction of two statements) just to find out, and a worker
 * that is ahead of its queue claims nothing often (about one claim in five of a drain).
 * It asks the claim's own webhooks, not every limited webhook: with 5,000 limited
 * webhooks of other tenants, idle, a sweep that asked them all took 8.1-9.1 ms, against
 * 1.5-1.7 (`LIMITED=5000 bench/sweep-probe.ts`). So a claim of the known webhooks
 * answers for them alone, and an event due for a limited webhook the worker does not
 * know waits for a sweep, as other webhooks' events do.
 *
 * A claim commits without waiting for its WAL to reach the disk (`synchronous_commit`
 * off for its own transaction only, set here so that a single-statement claim stays one
 * round trip). A lease is the one thing a claim writes, and losing it in a crash of the
 * database loses nothing: the event is due again, as when a worker dies. The worker's
 * record of the attempt commits durably, and that flush carries the claim's WAL with
 * it. So the claim skips a flush, which on PGlite blocks the database's only thread.
 */
const claimedEvents = (candidates: string) => `select ev.*, waiting.limited_due
       from (select exists (
                      select 1 from ${candidates} cross join lateral (
                        select w.* from webhooks w where w.id = cand.webhook_id limit 1) w
                      where ${LIMITED_WAITING}) as limited_due,
                    set_config('synchronous_commit', 'off', true) as commit_mode) waiting
       left join (
         -- the webhook's settings on its first event only (see sharingWebhooks)
         select e.id, e.uuid, e.event_type, e.body, e.retry_count, e.webhook_id, ${WEBHOOK_COLUMNS},
                e.max_attempts, oms_ts(e.run_at) as run_at
         from (
           select e.id, e.uuid, e.event_type, p.request_payload::text as body, e.retry_count,
                  e.webhook_id, c.max_attempts, c.run_at,
                  e.id = min(e.id) over (partition by e.webhook_id) as first
           from claimed c join hook_events e on e.id = c.hook_event_id
           join hook_event_payloads p on p.hook_event_id = c.hook_event_id
         ) e left join webhooks w on e.first and w.id = e.webhook_id
       ) ev on true
       order by ev.id`;

/**
 * The oldest queued event of an ordered webhook `w`, the only one it may be sent. A
 * `min(hook_event_id)` over its queue rows read the webhook's whole range of the
 * queue's (webhook_id, run_at) index, so with a backlog every claim grew with it (3,000
 * queued: 178 events/s, PostgreSQL 3.2 ms per event). This walks its undelivered events
 * in id order (`hook_events_pending_idx`) to the first with a queue row: every queued
 * event is undelivered (a delivered one leaves the queue in the statement that records
 * it), and those it passes over are the undelivered ones no longer queued, which an
 * ordered webhook gives up one at a time, at the end of each one's retries.
 */
const ORDERED_HEAD = (w: string) => `select e.id from hook_events e
             where e.webhook_id = ${w} and not e.delivered
               and exists (select 1 from hook_event_queue f where f.hook_event_id = e.id)
             order by e.id limit 1`;

/** The claim through the gate; $5 holds the limited webhooks the gate locked for it. */
const CLAIM_SQL = `with recursive ${roomsCte('$6')}, ${QUEUED_WEBHOOKS}, limits as (
         select w.id as webhook_id,
                coalesce(w.config->'ordered' = 'true'::jsonb, false) as ordered,
                case when jsonb_typeof(w.config->'max_concurrency') = 'number'
                     then (w.config->>'max_concurrency')::numeric end as max_concurrency,
                case when jsonb_typeof(w.config->'rate_limit') = 'number'
                     then (w.config->>'rate_limit')::float8 end as rate,
                -- the leases taken through the gate (migration 017), not the backlog
                (select count(*) from hook_event_queue l
                 where l.webhook_id = w.id and l.gated and l.locked_by is not null
                   and l.locked_until > $1::timestamptz) as leased,
                b.tokens, b.updated_at
         from webhooks w left join webhook_rate b on b.webhook_id = w.id
         where w.id = any($5::int[])
       ), buckets as (
         -- a bucket holds at most one second's worth (and at least one token); a clock
         -- that went back refills nothing
         select limits.*,
                case when rate is not null then
                  least(greatest(rate, 1),
                        coalesce(tokens + rate * greatest(0, extract(epoch from ($1::timestamptz - updated_at))),
                                 greatest(rate, 1))) end as available
         from limits
       ), allowed as (
         select webhook_id, ordered, rate, available,
                greatest(0, least(coalesce(max_concurrency - leased, $2),
                                  case when ordered then 1 - least(leased, 1) else $2 end,
                                  coalesce(floor(available), $2)))::int as n
         from buckets
       ), limited_due as (
         select c.hook_event_id, c.webhook_id, c.run_at from allowed a cross join lateral (
           select q.hook_event_id, q.webhook_id, q.run_at,
                  row_number() over (order by q.run_at, q.hook_event_id) as rn
           from hook_event_queue q
           where not a.ordered and q.webhook_id = a.webhook_id and ${DUE('q')}
           order by q.run_at, q.hook_event_id
           limit $2
         ) c
         left join rooms on rooms.webhook_id = a.webhook_id
         where c.rn <= least(a.n, coalesce(rooms.n, $7))
         union all
         -- an ordered webhook's oldest queued event, looked up by its key: a scan of the
         -- webhook's due rows for it read its whole backlog when that event was due after
         -- the others (a retry)
         select q.hook_event_id, q.webhook_id, q.run_at from allowed a
         join hook_event_queue q on q.hook_event_id = (${ORDERED_HEAD('a.webhook_id')})
         left join rooms on rooms.webhook_id = a.webhook_id
         where a.ordered and least(a.n, coalesce(rooms.n, $7)) > 0 and ${DUE('q')}
       ), open_due as (${OPEN_DUE(SWEPT, '$7', '$8::int[]')}
       ), picked as (
         select hook_event_id from (
           select hook_event_id, run_at from open_due
           union all
           select hook_event_id, run_at from limited_due
         ) candidates
         order by run_at, hook_event_id
         limit $2
       ), locked as (
         select q.hook_event_id, q.webhook_id from hook_event_queue q
         where q.hook_event_id in (select hook_event_id from picked) and ${DUE('q')}
         for update of q skip locked
       ), claimed as (
         update hook_event_queue q
         set locked_by = $3, locked_until = $1::timestamptz + $4 * interval '1 millisecond',
             gated = q.gated or q.webhook_id in (
               select webhook_id from limits where max_concurrency is not null or ordered)
         from locked where q.hook_event_id = locked.hook_event_id
         returning q.hook_event_id, q.webhook_id, q.max_attempts, q.run_at
       ), drawn as (
         insert into webhook_rate (webhook_id, tokens, updated_at)
         select a.webhook_id, a.available - count(*), $1::timestamptz
         from allowed a join claimed c on c.webhook_id = a.webhook_id
         where a.rate is not null
         group by a.webhook_id, a.available
         on conflict (webhook_id) do update set tokens = excluded.tokens, updated_at = excluded.updated_at
       )
       ${claimedEvents(SWEPT)}`;

/**
 * The claim when no limited webhook is served: the common one, and the one every claim
 * of a worker without limited webhooks makes. It stays small enough for PostgreSQL to
 * keep one generic plan for it, where the claim through the gate was planned afresh
 * each time (for a claim of 15 events, 1.4-1.9 ms of planning and 1.2-1.7 ms of
 * running, against ~0.3 ms of running this one). The
 * events are passed on as arrays, so that plan looks them up by primary key whatever
 * their number: a `hook_event_id in (select ...)` would let a generic plan, which does
 * not know how many there are, choose to hash-join a scan of the whole queue instead.
 * `$5` holds the rooms, `$6` the share, `$7` the webhooks with no room. A sweep looks at
 * the webhooks in its rooms and at every other webhook with rows in the queue; with
 * `known`, at those in its rooms alone (ClaimOptions.knownOnly).
 */
const openClaimSql = (known: boolean) => `with recursive ${roomsCte('$5')}${
  known ? '' : `, ${QUEUED_WEBHOOKS}`
}, open_due as (${OPEN_DUE(known ? 'rooms cand' : SWEPT, '$6', '$7::int[]')}
       ), locked as (
         select l.hook_event_id from hook_event_queue l
         where l.hook_event_id = any(array(select hook_event_id from open_due
                                           order by run_at, hook_event_id limit $2))
           and ${DUE('l')}
         for update skip locked
       ), claimed as (
         update hook_event_queue q
         set locked_by = $3, locked_until = $1::timestamptz + $4 * interval '1 millisecond'
         where q.hook_event_id = any(array(select hook_event_id from locked))
         returning q.hook_event_id, q.max_attempts, q.run_at
       )
       ${claimedEvents(known ? 'rooms cand' : SWEPT)}`;
const OPEN_CLAIM_SQL = openClaimSql(false);
const KNOWN_CLAIM_SQL = openClaimSql(true);

/**
 * The gate: locks the limited webhooks with an event due that this claim may serve,
 * skipping those another worker is claiming for. It looks at the webhooks a sweep looks
 * at (SWEPT), not at every limited webhook. `$2` holds the rooms.
 *
 * When it locks any, it also sets `plan_cache_mode` for the rest of its transaction, so
 * that the claim after it (CLAIM_SQL) runs its generic plan. PostgreSQL kept planning
 * that claim for its values, 2.3 ms of planning a claim in a logged drain: with
 * max_concurrency 50, a drain read 3,611 and 3,873 events/s against 3,029 and 3,108
 * (PostgreSQL 130-148 µs per event against 199-208; `HOOK_CONFIG` in
 * `bench/backlog-probe.ts`, two alternated pairs). Its generic plan reads the queue by
 * index (test/queue/claim-plan.test.ts). PGlite prepares no statement inside a
 * transaction, so there it is planned at each call still.
 */
const GATE_SQL = `with recursive ${roomsCte('$2')}, ${QUEUED_WEBHOOKS}
       select w.id, set_config('plan_cache_mode', 'force_generic_plan', true) as plans
       from ${SWEPT} join webhooks w on w.id = cand.webhook_id
       where ${LIMITED_WAITING}
       order by w.id
       for no key update of w skip locked`;

/**
 * Claims up to `limit` due events under a lease. `SKIP LOCKED` lets any number of
 * workers claim side by side without waiting on each other or taking the same row; a
 * row whose lease has expired (its worker died) is due again. Events of an inactive
 * webhook stay queued and untouched: deactivating pauses a webhook, reactivating resumes.
 *
 * Per-webhook limits hold across all workers: `max_concurrency` (events with a live
 * lease taken through the gate or by a resend: migration 017), `rate_limit` (a token
 * bucket in webhook_rate) and `ordered` (only the oldest queued event, and only while
 * none is leased). They are counted from the queue itself,
 * so two claims must not count at the same time: the first statement locks the limited
 * webhooks this claim may serve (skipping those another worker is claiming for), and
 * the second, with a snapshot taken after that lock, sees every lease committed before.
 */
export async function claimDue(db: Db, o: ClaimOptions): Promise<ClaimedEvent[]> {
  return (await claimBatch(db, o)).events;
}

export interface ClaimBatch {
  events: ClaimedEvent[];
  /**
   * Whether a webhook with a shared limit has due events, as the claim saw it. Pass it
   * as the next claim's `gate`.
   */
  limitedDue: boolean;
}

/**
 * `claimDue`, for a running worker. With `gate: false` the claim is one statement and
 * one round trip: it serves only webhooks without shared limits, and says whether any
 * limited webhook is waiting, so that the next claim goes through the gate.
 */
export async function claimBatch(
  db: Db,
  o: ClaimOptions & { gate?: boolean },
): Promise<ClaimBatch> {
  const share = o.perWebhook ?? o.limit;
  const rooms = o.room ?? new Map<number, number>();
  const after = o.after ?? new Map<number, QueuePosition>();
  const webhooks = [...new Set([...rooms.keys(), ...after.keys()])];
  const room = (id: number) => rooms.get(id) ?? null;
  const full = webhooks.filter((id) => (room(id) ?? share) <= 0);
  const knownIds = [...new Set([...webhooks, ...(o.notified ?? [])])];
  const known = o.knownOnly === true && knownIds.length > 0;
  const roomsJson = (ids: number[]) =>
    JSON.stringify(
      ids.map((id) => ({
        webhook_id: id,
        n: room(id),
        after_run_at: after.get(id)?.runAt ?? null,
        after_id: after.get(id)?.id ?? null,
      })),
    );
  let swept: string | undefined;
  // a claim through the gate sends the same rooms twice: written once
  const sweptRooms = () => (swept ??= roomsJson(webhooks));
  const claim = (q: Queryable, gated: number[]) =>
    gated.length === 0
      ? q.query<ClaimRow & { limited_due: boolean }>(
          known ? KNOWN_CLAIM_SQL : OPEN_CLAIM_SQL,
          [
            o.now,
            o.limit,
            o.workerId,
            o.leaseMs,
            known ? roomsJson(knownIds) : sweptRooms(),
            share,
            full,
          ],
          known ? 'oms_claim_known' : 'oms_claim_open',
        )
      : q.query<ClaimRow & { limited_due: boolean }>(
          CLAIM_SQL,
          [o.now, o.limit, o.workerId, o.leaseMs, gated, sweptRooms(), share, full],
          'oms_claim',
        );
  const { rows } =
    o.gate === false
      ? await claim(db, [])
      : await db.transaction(async (tx) => {
          const gated = await tx.query<{ id: number }>(
            GATE_SQL,
            [o.now, sweptRooms()],
            'oms_claim_gate',
          );
          return claim(
            tx,
            gated.rows.map((r) => r.id),
          );
        });
  return {
    events: sharingWebhooks(rows, 0),
    limitedDue: rows[0]?.limited_due ?? true,
  };
}

/**
 * Gives back the leases of events this worker claimed and will not attempt (a shutdown
 * whose grace ran out): they are due again at once for any worker.
 */
export async function releaseLeases(
  db: Queryable,
  workerId: string,
  ids: number[],
): Promise<number> {
  if (ids.length === 0) return 0;
  const { rowCount } = await db.query(
    `update hook_event_queue set locked_by = null, locked_until = null
     where hook_event_id = any($1::bigint[]) and locked_by = $2`,
    [ids, workerId],
  );
  return rowCount;
}

/**
 * Loads one event for a manual resend. When it is still queued, it is leased to
 * `workerId` so no worker attempts it at the same moment; when a worker holds the lease
 * right now, the answer is 'busy' and nothing is sent.
 */
export async function claimForResend(
  db: Queryable,
  id: number,
  o: Omit<ClaimOptions, 'limit'>,
  defaultMaxAttempts: number,
): Promise<ClaimedEvent | 'busy' | undefined> {
  const { rows } = await db.query<ClaimRow & { busy: boolean }>(
    `with leased as (
       update hook_event_queue q
       -- a resend counts toward its webhook's max_concurrency as a gated claim does
       set locked_by = $2, locked_until = $3::timestamptz + $4 * interval '1 millisecond',
           gated = q.gated or coalesce((select ${COUNTS_LEASES} from webhooks w where w.id = q.webhook_id), false)
       where q.hook_event_id = $1 and (q.locked_until is null or q.locked_until <= $3::timestamptz)
       returning q.hook_event_id
     )
     select ${EVENT_COLUMNS}, q.max_attempts,
       (q.hook_event_id is not null and not exists (select 1 from leased)) as busy
     from hook_events e join webhooks w on w.id = e.webhook_id
     join hook_event_payloads p on p.hook_event_id = e.id
     left join hook_event_queue q on q.hook_event_id = e.id
     where e.id = $1`,
    [id, o.workerId, o.now, o.leaseMs],
  );
  const row = rows[0];
  if (!row) return undefined;
  return row.busy ? 'busy' : sharingWebhooks([row], defaultMaxAttempts)[0];
}
