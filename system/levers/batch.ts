import type { Span } from '@opentelemetry/api';
import DataLoader from 'dataloader';
import { type Db, type RequestHandle, requestHandleOf } from '../db/database.ts';
import { isTransientDbError } from '../db/errors.ts';
import type { Loaders, LoadersFactory } from '../db/loaders.ts';
import { getMembershipsByPairs, getOrgs, getUsers } from '../db/queries/batched.ts';
import { getMembership, listMembersWithUsers } from '../db/queries/memberships.ts';
import { getOrg } from '../db/queries/organizations.ts';
import { getUser } from '../db/queries/users.ts';
import type { Membership, Organization, User } from '../db/schema.ts';
import { traced, UNTRACED } from '../trace.ts';
import { invalidOption } from './invalid-option.ts';

/**
 * The batching lever (the audit's `BatchConfig`): the loader-shaped lookups become
 * DataLoader batches, one `IN (...)` query per batch, shared by every request in the
 * process so that concurrent requests within `waitTime` share a query too.
 * DataLoader's own cache is off: memoizing across requests would be a cache with no
 * invalidation (that is the cache lever's job); within one request, repeated keys are
 * deduplicated by a per-request memo.
 */
export interface BatchConfig {
  enabled?: boolean;
  /** Largest batch; bigger ones are split. @default 100 */
  maxBatchSize?: number;
  /** Milliseconds to collect keys before dispatch; 0 = the current tick only. @default 0 */
  waitTime?: number;
  /** How a failed batch dispatch is retried (transient errors only). @default 'exponential' */
  retryStrategy?: 'immediate' | 'exponential';
  /** Attempts per dispatch, the first included. @default 3 */
  maxAttempts?: number;
  /** First backoff step for 'exponential' (full jitter, capped at 32x). @default 10 */
  baseDelayMs?: number;
  /** No retry starts later than this after the first attempt (the overall deadline). @default 3000 */
  deadlineMs?: number;
}

export type ResolvedBatchConfig = Readonly<Required<BatchConfig>>;

/** @default 100 */
export const DEFAULT_MAX_BATCH_SIZE = 100;
/** @default 0 (same tick) */
export const DEFAULT_WAIT_TIME_MS = 0;
/** @default 3 */
export const DEFAULT_MAX_ATTEMPTS = 3;
/** @default 10 */
export const DEFAULT_BASE_DELAY_MS = 10;
/** @default 3000 */
export const DEFAULT_DEADLINE_MS = 3000;

export function resolveBatchConfig(input: BatchConfig = {}): ResolvedBatchConfig {
  const config = {
    enabled: input.enabled ?? true,
    maxBatchSize: input.maxBatchSize ?? DEFAULT_MAX_BATCH_SIZE,
    waitTime: input.waitTime ?? DEFAULT_WAIT_TIME_MS,
    retryStrategy: input.retryStrategy ?? 'exponential',
    maxAttempts: input.maxAttempts ?? DEFAULT_MAX_ATTEMPTS,
    baseDelayMs: input.baseDelayMs ?? DEFAULT_BASE_DELAY_MS,
    deadlineMs: input.deadlineMs ?? DEFAULT_DEADLINE_MS,
  };
  if (typeof config.enabled !== 'boolean') invalid('enabled', config.enabled, 'a boolean');
  if (
    !Number.isInteger(config.maxBatchSize) ||
    config.maxBatchSize < 1 ||
    config.maxBatchSize > 1000
  ) {
    invalid('maxBatchSize', config.maxBatchSize, 'an integer from 1 to 1000');
  }
  if (!Number.isFinite(config.waitTime) || config.waitTime < 0 || config.waitTime > 1000) {
    invalid('waitTime', config.waitTime, 'milliseconds from 0 to 1000');
  }
  if (config.retryStrategy !== 'immediate' && config.retryStrategy !== 'exponential') {
    invalid('retryStrategy', config.retryStrategy, "'immediate' or 'exponential'");
  }
  if (!Number.isInteger(config.maxAttempts) || config.maxAttempts < 1 || config.maxAttempts > 10) {
    invalid('maxAttempts', config.maxAttempts, 'an integer from 1 to 10');
  }
  if (!Number.isFinite(config.baseDelayMs) || config.baseDelayMs < 0) {
    invalid('baseDelayMs', config.baseDelayMs, 'a non-negative number of milliseconds');
  }
  if (!Number.isFinite(config.deadlineMs) || config.deadlineMs <= 0) {
    invalid('deadlineMs', config.deadlineMs, 'a positive number of milliseconds');
  }
  return Object.freeze(config);
}

const invalid = invalidOption('batch');

/** Plain hook for telemetry: one call per dispatched batch. */
export interface BatchEvent {
  loader: 'user' | 'org' | 'membership';
  size: number;
  /** Time from the first key's arrival to dispatch. */
  waitMs: number;
  attempts: number;
  ok: boolean;
}

export interface BatchHooks {
  onBatch?: (event: BatchEvent) => void;
  /** Injected for tests. */
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
}

/** A loaders factory backed by process-wide batches; one set of DataLoaders per database. */
export function batchedLoaders(
  config: ResolvedBatchConfig,
  hooks: BatchHooks = {},
): LoadersFactory {
  const perDb = new WeakMap<Db, SharedLoaders>();
  return (db) => {
    // a request's own handle: the batches are the database's, shared by every request,
    // and each is charged to the request whose key opened it
    const request = requestHandleOf(db);
    const base = request?.shared ?? db;
    let shared = perDb.get(base);
    if (shared === undefined) {
      shared = createSharedLoaders(base, config, hooks);
      perDb.set(base, shared);
    }
    return perRequest(db, shared, request);
  };
}

/**
 * The request whose key opens a batch (its handle, `requestHandleOf`): the batch's span is
 * a child of its span, and the batch's queries run on its handle, so they count as its.
 */
export type BatchOpener = Pick<RequestHandle, 'trace' | 'under'>;

export interface KeyLoader<V> {
  load(key: string, opener?: BatchOpener): Promise<V | null>;
}

interface SharedLoaders {
  user: KeyLoader<User>;
  org: KeyLoader<Organization>;
  membership: KeyLoader<Membership>;
}

const PAIR = '\u0000';

function createSharedLoaders(
  db: Db,
  config: ResolvedBatchConfig,
  hooks: BatchHooks,
): SharedLoaders {
  const dispatcher = <V>(
    loader: BatchEvent['loader'],
    load: (keys: readonly string[], db: Db) => Promise<Map<string, V>>,
  ) => createKeyLoader(loader, (keys, opened) => load(keys, opened ?? db), config, hooks);
  // A batch of one uses the prepared single-row lookup: building an `IN (...)` query
  // costs more than the query itself, and a lone key is common (the membership check).
  const byKey = <V>(rows: Array<V | null>, keyOf: (row: V) => string) =>
    new Map(rows.flatMap((row) => (row === null ? [] : [[keyOf(row), row] as const])));
  const user = dispatcher('user', async (ids, db) =>
    byKey(ids.length === 1 ? [await getUser(db, ids[0]!)] : await getUsers(db, ids), (u) => u.id),
  );
  const org = dispatcher('org', async (ids, db) =>
    byKey(ids.length === 1 ? [await getOrg(db, ids[0]!)] : await getOrgs(db, ids), (o) => o.id),
  );
  const membership = dispatcher('membership', async (keys, db) => {
    const pairs = keys.map((key) => key.split(PAIR) as [string, string]);
    const rows =
      pairs.length === 1
        ? [await getMembership(db, pairs[0]![0], pairs[0]![1])]
        : await getMembershipsByPairs(db, pairs);
    return byKey(rows, (m) => `${m.orgId}${PAIR}${m.userId}`);
  });
  return { user, org, membership };
}

/** Per-request view: repeated keys within one request share one promise. */
function perRequest(db: Db, shared: SharedLoaders, request: RequestHandle | undefined): Loaders {
  const memo = new Map<string, Promise<unknown>>();
  const once = <T>(key: string, load: () => Promise<T>): Promise<T> => {
    let promise = memo.get(key) as Promise<T> | undefined;
    if (promise === undefined) {
      promise = load();
      memo.set(key, promise);
    }
    return promise;
  };
  return {
    user: (id) => once(`u${PAIR}${id}`, () => shared.user.load(id, request)),
    org: (id) => once(`o${PAIR}${id}`, () => shared.org.load(id, request)),
    membership: (orgId, userId) =>
      once(`m${PAIR}${orgId}${PAIR}${userId}`, () =>
        shared.membership.load(`${orgId}${PAIR}${userId}`, request),
      ),
    // the page and its users in one joined read: a batch no DataLoader needs to collect
    membersPage: (orgId, page) =>
      traced(request?.trace ?? UNTRACED, 'batch', 'batch.members_page', async (span) => {
        const joined = await listMembersWithUsers(request?.under(span) ?? db, orgId, page);
        return {
          rows: joined.map((r) => r.membership),
          users: joined.slice(0, page.limit).map((r) => r.user),
        };
      }),
  };
}

/**
 * One batched lookup: a DataLoader over `load` (keys -> found rows by key; a missing key
 * is a per-key `null`), with timing, hooks and the retry strategy. Exported for tests.
 */
export function createKeyLoader<V>(
  loader: BatchEvent['loader'],
  load: (keys: readonly string[], db: Db | undefined) => Promise<Map<string, V>>,
  config: ResolvedBatchConfig,
  hooks: BatchHooks = {},
): KeyLoader<V> {
  const sleep = hooks.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const random = hooks.random ?? Math.random;
  const options = {
    cache: false,
    maxBatchSize: config.maxBatchSize,
    ...(config.waitTime > 0
      ? { batchScheduleFn: (dispatch: () => void) => void setTimeout(dispatch, config.waitTime) }
      : {}),
  };
  let firstKeyAt: number | null = null;
  let openedBy: BatchOpener | undefined;
  const batchFn = (keys: readonly string[]): Promise<Array<V | null>> => {
    const waitMs = firstKeyAt === null ? 0 : performance.now() - firstKeyAt;
    firstKeyAt = null;
    const opener = openedBy;
    return traced(
      opener?.trace ?? UNTRACED,
      'batch',
      `batch.${loader}`,
      (span) => dispatch(keys, waitMs, span, opener?.under(span)),
      { 'dataflow.batch.size': keys.length, 'dataflow.batch.wait_ms': waitMs },
    );
  };
  const dispatch = async (
    keys: readonly string[],
    waitMs: number,
    span: Span | undefined,
    db: Db | undefined,
  ): Promise<Array<V | null>> => {
    const started = performance.now();
    let attempts = 0;
    for (;;) {
      attempts += 1;
      try {
        const found = await load(keys, db);
        hooks.onBatch?.({ loader, size: keys.length, waitMs, attempts, ok: true });
        if (attempts > 1) span?.setAttribute('dataflow.batch.attempts', attempts);
        return keys.map((key) => found.get(key) ?? null);
      } catch (error) {
        const delay =
          config.retryStrategy === 'exponential'
            ? Math.floor(random() * config.baseDelayMs * 2 ** Math.min(attempts - 1, 5)) // full jitter
            : 0;
        const pastDeadline = performance.now() - started + delay > config.deadlineMs;
        if (attempts >= config.maxAttempts || pastDeadline || !isTransientDbError(error)) {
          hooks.onBatch?.({ loader, size: keys.length, waitMs, attempts, ok: false });
          throw error; // DataLoader rejects every waiter of the batch
        }
        if (delay > 0) await sleep(delay);
      }
    }
  };
  const dataLoader = new DataLoader<string, V | null>(batchFn, options);
  return {
    load(key, opener) {
      if (firstKeyAt === null) {
        firstKeyAt = performance.now(); // when this batch started collecting
        openedBy = opener;
      }
      return dataLoader.load(key);
    },
  };
}
