import { ConsecutiveBreaker, circuitBreaker, handleAll } from 'cockatiel';
import type { Loaders, LoadersFactory } from '../db/loaders.ts';
import type { ChangeRow } from '../db/schema.ts';
import type { Sha256Hex } from '../hash.ts';
import { annotate, type RequestTrace, remoteParent, traced, UNTRACED } from '../trace.ts';
import type { CachedResponse, CacheStore } from './cache-store.ts';
import { invalidOption } from './invalid-option.ts';
import { pathAndSortedQuery } from './request-key.ts';

/** Span attribute: hit, miss, stale or error. */
const CACHE_RESULT = 'dataflow.cache.result';

/**
 * The caching lever (the audit's `CacheConfig`), framework-free. The HTTP adapter is
 * `api/middleware/cache.ts`; each route declares there whether and how it may be cached.
 *
 * - `memory` / `distributed`: a route's answer is stored (an LRU in the process, or
 *   Redis shared by all processes) under a key that starts with the org and its
 *   generation, then the caller's user unless the route declared its answer the same
 *   for every member of the org (`scope: 'org'`).
 * - `edge`: no server store; ETag + 304 and Cache-Control on every GET (any runtime).
 *
 * Invalidation comes from the change-log publisher, before the realtime push: `precise`
 * deletes the entries tagged with what a change touched (each entry is tagged with the
 * rows it read and the org collections its route declared); `group` bumps the org's
 * generation. Misses for one key share one execution; TTLs are jittered; when the
 * database fails, the last value is served for `staleIfErrorMs`. Store errors (Redis
 * down) count as misses behind a circuit breaker (cockatiel), so the app falls back to
 * the database.
 */
export interface CacheConfig {
  enabled?: boolean;
  level?: 'memory' | 'edge' | 'distributed';
  /** Fresh time in milliseconds. @default 30000 */
  ttl?: number;
  invalidation?: 'precise' | 'group';
  /** TTLs are shortened by up to this share, at random, so entries do not expire together. @default 0.1 */
  jitter?: number;
  /** How long past its TTL an entry may still be served when the database fails. @default 60000 */
  staleIfErrorMs?: number;
  /** `stale-while-revalidate` seconds in Cache-Control (edge). 0 keeps `no-cache`. @default 0 */
  staleWhileRevalidateSec?: number;
}

export type ResolvedCacheConfig = Readonly<Required<CacheConfig>>;

export function resolveCacheConfig(input: CacheConfig = {}): ResolvedCacheConfig {
  const config = {
    enabled: input.enabled ?? true,
    level: input.level ?? 'memory',
    ttl: input.ttl ?? 30_000,
    invalidation: input.invalidation ?? 'precise',
    jitter: input.jitter ?? 0.1,
    staleIfErrorMs: input.staleIfErrorMs ?? 60_000,
    staleWhileRevalidateSec: input.staleWhileRevalidateSec ?? 0,
  };
  if (typeof config.enabled !== 'boolean') invalid('enabled', config.enabled, 'a boolean');
  if (!['memory', 'edge', 'distributed'].includes(config.level)) {
    invalid('level', config.level, "'memory', 'edge' or 'distributed'");
  }
  if (!Number.isFinite(config.ttl) || config.ttl <= 0)
    invalid('ttl', config.ttl, 'a positive number of milliseconds');
  if (config.invalidation !== 'precise' && config.invalidation !== 'group') {
    invalid('invalidation', config.invalidation, "'precise' or 'group'");
  }
  if (!(config.jitter >= 0 && config.jitter < 1))
    invalid('jitter', config.jitter, 'a share from 0 to below 1');
  if (!(config.staleIfErrorMs >= 0))
    invalid('staleIfErrorMs', config.staleIfErrorMs, 'milliseconds >= 0');
  if (!(config.staleWhileRevalidateSec >= 0)) {
    invalid('staleWhileRevalidateSec', config.staleWhileRevalidateSec, 'seconds >= 0');
  }
  return Object.freeze(config);
}

const invalid = invalidOption('cache');

/**
 * Who may be served an entry: every member of the org (`org`: the answer has nothing
 * of the caller in it), or the caller alone (`user`). Declared by each route.
 */
export type CacheScope = 'org' | 'user';

/** Org-wide collections a route's answer reads beyond its loader lookups. */
export type OrgCollection = 'members' | 'projects';

export const collectionTag = (collection: OrgCollection, orgId: string) => `${collection}:${orgId}`;

export type CacheResult = 'hit' | 'miss' | 'stale' | 'error';
export interface CacheHooks {
  onLookup?: (event: { level: string; result: CacheResult; route: string }) => void;
  onInvalidate?: (event: { mode: 'precise' | 'group'; entries: number }) => void;
  onStoreError?: (error: unknown) => void;
  now?: () => number;
  random?: () => number;
}

/** Wraps loaders so every row a cached answer reads tags it. */
export function taggingLoaders(
  factory: LoadersFactory,
): (db: Parameters<LoadersFactory>[0], tags: () => Set<string> | undefined) => Loaders {
  return (db, tags) => {
    const inner = factory(db);
    return {
      user: (id) => {
        tags()?.add(`user:${id}`);
        return inner.user(id);
      },
      org: (id) => {
        tags()?.add(`org:${id}`);
        return inner.org(id);
      },
      membership: (orgId, userId) => {
        tags()?.add(`membership:${orgId}:${userId}`);
        return inner.membership(orgId, userId);
      },
      async membersPage(orgId, page) {
        const result = await inner.membersPage(orgId, page);
        const set = tags();
        if (set) for (const m of result.rows.slice(0, page.limit)) set.add(`user:${m.userId}`);
        return result;
      },
    };
  };
}

/** The tags a committed change invalidates. */
export function tagsOf(row: ChangeRow): string[] {
  switch (row.entity) {
    case 'user':
      return [`user:${row.entityId}`];
    case 'organization':
      return [`org:${row.entityId}`];
    case 'membership': {
      let userId: unknown;
      try {
        userId = (JSON.parse(row.data) as { userId?: unknown }).userId;
      } catch {
        userId = undefined;
      }
      return [
        collectionTag('members', row.orgId),
        ...(typeof userId === 'string' ? [`membership:${row.orgId}:${userId}`] : []),
      ];
    }
    case 'project':
      return [collectionTag('projects', row.orgId)];
  }
}

/** One cacheable read, as the HTTP adapter describes it. */
export interface CacheRead {
  orgId: string;
  /** The caller; left out of the key when `scope` is `org`. */
  userId: string;
  scope: CacheScope;
  /** The request URL; its query parameters are sorted for the key. */
  url: string;
  /** Low-cardinality label for hooks (the route template). */
  route: string;
  /** Collections the route declared it reads (tags for precise invalidation). */
  reads: readonly OrgCollection[];
  /** The request's span and timings (the lookup's result is set on its span). */
  trace?: RequestTrace;
}

/**
 * What to answer: an entry (a hit, a stale value, or what the leader of the same key
 * produced), or the caller's own loaded response (`stored` when it entered the cache).
 */
export type CacheReadResult =
  | { kind: 'entry'; entry: CachedResponse; state: 'hit' | 'miss' | 'stale' }
  | { kind: 'loaded'; stored: boolean };

export interface ResponseCache {
  readonly level: CacheStore['level'];
  /**
   * Serves `read` from the cache, or calls `load` (once per key at a time) with the tag
   * set its rows are recorded into. `load` resolves to the loaded response.
   */
  read(read: CacheRead, load: (tags: Set<string>) => Promise<Response>): Promise<CacheReadResult>;
  /** For the change-log publisher: runs before the realtime push. */
  invalidate(rows: readonly ChangeRow[]): Promise<void>;
}

export function createResponseCache(
  config: ResolvedCacheConfig,
  store: CacheStore,
  hooks: CacheHooks = {},
  options: {
    /**
     * Concurrent misses of one key share one load. Off on Workers: workerd cancels a
     * request that waits on another request's I/O. @default true
     */
    shareMisses?: boolean;
  } = {},
): ResponseCache {
  const shareMisses = options.shareMisses ?? true;
  const now = hooks.now ?? Date.now;
  const random = hooks.random ?? Math.random;
  const breaker = circuitBreaker(handleAll, {
    halfOpenAfter: 5000,
    breaker: new ConsecutiveBreaker(3),
  });
  const guarded = async <T>(op: () => Promise<T>, fallback: T): Promise<T> => {
    try {
      return await breaker.execute(op);
    } catch (error) {
      hooks.onStoreError?.(error);
      return fallback;
    }
  };
  const inflight = new Map<string, Promise<CachedResponse | null>>();
  /**
   * Bumped by every invalidation. A load that saw it move is answered but not stored:
   * it may have read a row the invalidation was for, and storing it after the
   * invalidation would keep a stale answer until the TTL.
   */
  let invalidations = 0;
  /** Keys whose leader has followers waiting (only then is an error response copied). */
  const inflightWaiters = new Set<string>();

  async function read(
    request: CacheRead,
    load: (tags: Set<string>) => Promise<Response>,
  ): Promise<CacheReadResult> {
    const { orgId, route, trace = UNTRACED } = request;
    const who = request.scope === 'org' ? '*' : request.userId;
    const lookup = (result: CacheResult) => {
      hooks.onLookup?.({ level: store.level, result, route });
      annotate(trace, { [CACHE_RESULT]: result });
    };
    const { key, cached } = await traced(
      trace,
      'cache',
      'cache.get',
      async (span) => {
        const generation = await guarded(() => store.generation(orgId), 0);
        const key = `${orgId}|g${generation}|${who}|${pathAndSortedQuery(request.url)}`;
        const cached = await guarded(() => store.get(key), undefined);
        span?.setAttribute(CACHE_RESULT, cached && cached.freshUntil > now() ? 'hit' : 'miss');
        return { key, cached };
      },
      { 'dataflow.cache.level': store.level },
    );
    if (cached && cached.freshUntil > now()) {
      lookup('hit');
      return { kind: 'entry', entry: cached, state: 'hit' };
    }

    // a miss: concurrent misses of one key share one execution (no stampede)
    const running = shareMisses ? inflight.get(key) : undefined;
    if (running) {
      inflightWaiters.add(key);
      const shared = await running;
      if (shared) {
        // the leader's answer, or its error once (an error is never stored)
        const ok = shared.status === 200;
        lookup(ok ? 'hit' : 'error');
        return { kind: 'entry', entry: shared, state: ok ? 'hit' : 'miss' };
      }
    }
    let finish: (value: CachedResponse | null) => void = () => {};
    if (shareMisses) {
      inflight.set(
        key,
        new Promise((resolve) => {
          finish = resolve;
        }),
      );
    }
    const tags = new Set<string>([
      `org:${orgId}`,
      ...request.reads.map((c) => collectionTag(c, orgId)),
    ]);
    const seen = invalidations;
    try {
      const res = await load(tags);
      if (res.status >= 500 && cached && now() <= cached.freshUntil + config.staleIfErrorMs) {
        // stale-if-error: the database failed, the last value is still within its grace
        lookup('stale');
        finish(cached);
        return { kind: 'entry', entry: cached, state: 'stale' };
      }
      if (res.status !== 200) {
        lookup(res.status >= 500 ? 'error' : 'miss');
        if (inflightWaiters.has(key)) {
          // waiters get this error once instead of each running the failing load again
          finish({
            status: res.status,
            headers: [...res.headers].filter(
              ([name]) => name === 'content-type' || name === 'retry-after',
            ),
            body: await res.clone().text(),
            freshUntil: 0,
          });
        }
        return { kind: 'loaded', stored: false };
      }
      lookup('miss');
      const ttl = config.ttl * (1 - config.jitter * random());
      const entry: CachedResponse = {
        status: res.status,
        headers: [...res.headers].filter(([name]) => name === 'content-type'),
        body: await res.clone().text(),
        freshUntil: now() + ttl,
      };
      finish(entry);
      if (seen !== invalidations) return { kind: 'loaded', stored: false };
      await guarded(() => store.set(key, entry, [...tags], ttl + config.staleIfErrorMs), undefined);
      return { kind: 'loaded', stored: true };
    } finally {
      if (shareMisses) {
        inflight.delete(key);
        inflightWaiters.delete(key);
      }
      finish(null);
    }
  }

  return {
    level: store.level,
    read,
    invalidate(rows) {
      invalidations += 1;
      const mode = config.invalidation;
      // under the change that caused it (its change-log row's traceparent), as the broadcast is
      return traced(
        { span: remoteParent(rows[0]?.traceContext) },
        'cache',
        'cache.invalidate',
        async (span) => {
          let entries: number;
          if (mode === 'group') {
            const orgs = new Set(rows.map((r) => r.orgId));
            for (const orgId of orgs) await guarded(() => store.bumpGeneration(orgId), undefined);
            entries = orgs.size;
          } else {
            const tags = new Set(rows.flatMap(tagsOf));
            entries = await guarded(() => store.invalidateTags([...tags]), 0);
          }
          span?.setAttribute('dataflow.cache.invalidated', entries);
          hooks.onInvalidate?.({ mode, entries });
        },
        { 'dataflow.cache.invalidation': mode, 'dataflow.cache.level': store.level },
      );
    },
  };
}

/**
 * The `edge` level's validators, on every runtime: a strong ETag over a 200 body and
 * the Cache-Control value. Authenticated answers are `private`; `no-cache` (revalidate
 * every time) is the default because a pushed change must be visible on the next
 * fetch, which a stale-while-revalidate hit would not guarantee.
 */
export async function strongEtag(body: ArrayBuffer, sha256: Sha256Hex): Promise<string> {
  return `"${(await sha256(new Uint8Array(body))).slice(0, 24)}"`;
}

export function edgeCacheControl(config: ResolvedCacheConfig): string {
  return config.staleWhileRevalidateSec > 0
    ? `private, max-age=0, stale-while-revalidate=${config.staleWhileRevalidateSec}`
    : 'private, no-cache';
}
