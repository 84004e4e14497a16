import { ConsecutiveBreaker, circuitBreaker, handleAll } from 'cockatiel';
import type { Context, MiddlewareHandler } from 'hono';
import { routePath } from 'hono/route';
import type { AppEnv } from '../api/context.ts';
import type { Loaders, LoadersFactory } from '../db/loaders.ts';
import type { ChangeRow } from '../db/schema.ts';
import { annotate, traced } from '../telemetry/spans.ts';
import type { CachedResponse, CacheStore } from './cache-store.ts';
import { invalidOption } from './invalid-option.ts';

/** Span attribute: hit, miss, stale or error. */
const CACHE_RESULT = 'dataflow.cache.result';

/**
 * The caching lever (the audit's `CacheConfig`) for the org-scoped reads:
 *
 * - `memory` / `distributed`: responses of `GET /api/orgs/:orgId…` are stored (an LRU
 *   in the process, or Redis shared by all processes) under a key that starts with the
 *   org and its generation, and the caller's user unless the route's answer is the same
 *   for every member. A hit still passes the membership check first.
 * - `edge`: no server store; ETag + 304 and Cache-Control on every GET (any runtime).
 *
 * Invalidation comes from the change-log publisher, before the realtime push: `precise`
 * deletes the entries tagged with what a change touched (each entry is tagged with the
 * rows it read); `group` bumps the org's generation. Misses for one key share one
 * execution; TTLs are jittered; when the database fails, the last value is served for
 * `staleIfErrorMs`, marked `X-Cache: stale`. Store errors (Redis down) count as misses
 * behind a circuit breaker (cockatiel), so the app falls back to the database.
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

export type CacheResult = 'hit' | 'miss' | 'stale' | 'error';
export interface CacheHooks {
  onLookup?: (event: { level: string; result: CacheResult; route: string }) => void;
  onInvalidate?: (event: { mode: 'precise' | 'group'; entries: number }) => void;
  onStoreError?: (error: unknown) => void;
  now?: () => number;
  random?: () => number;
}

/** Routes whose answer is the same for every member of the org (no user in the key). */
const SHARED_ROUTES = new Set([
  '/api/orgs/:orgId/members',
  '/api/orgs/:orgId/projects',
  '/api/orgs/:orgId/projects/:projectId',
]);

/** Records a tag for the entry being built (no-op outside a cached request). */
export function tagResponse(c: Context<AppEnv>, ...tags: string[]): void {
  const set = c.get('cacheTags');
  if (set) for (const tag of tags) set.add(tag);
}

/** Wraps loaders so every row a cached response reads tags it. */
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
        `members:${row.orgId}`,
        ...(typeof userId === 'string' ? [`membership:${row.orgId}:${userId}`] : []),
      ];
    }
    case 'project':
      return [`projects:${row.orgId}`];
  }
}

export interface ResponseCache {
  middleware: MiddlewareHandler<AppEnv>;
  /** For the change-log publisher: runs before the realtime push. */
  invalidate(rows: readonly ChangeRow[]): Promise<void>;
}

export function createResponseCache(
  config: ResolvedCacheConfig,
  store: CacheStore,
  hooks: CacheHooks = {},
): ResponseCache {
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
  /** Keys whose leader has followers waiting (only then is an error response copied). */
  const inflightWaiters = new Set<string>();

  const middleware: MiddlewareHandler<AppEnv> = async function responseCache(c, next) {
    if (c.req.method !== 'GET') return next();
    const orgId = c.var.member.orgId;
    const route = routePath(c, -1);
    const url = new URL(c.req.url);
    url.searchParams.sort();
    const who = SHARED_ROUTES.has(route) ? '*' : c.var.session.userId;
    const lookup = (result: CacheResult) => {
      hooks.onLookup?.({ level: store.level, result, route });
      annotate({ [CACHE_RESULT]: result });
    };
    const { key, cached } = await traced(
      'cache',
      'cache.get',
      async (span) => {
        const generation = await guarded(() => store.generation(orgId), 0);
        const key = `${orgId}|g${generation}|${who}|${url.pathname}?${url.searchParams}`;
        const cached = await guarded(() => store.get(key), undefined);
        span?.setAttribute(CACHE_RESULT, cached && cached.freshUntil > now() ? 'hit' : 'miss');
        return { key, cached };
      },
      { 'dataflow.cache.level': store.level },
    );
    if (cached && cached.freshUntil > now()) {
      lookup('hit');
      c.res = respond(cached, c.var.requestId, 'hit');
      return;
    }

    // a miss: concurrent misses of one key share one execution (no stampede)
    const running = inflight.get(key);
    if (running) {
      inflightWaiters.add(key);
      const shared = await running;
      if (shared) {
        // the leader's answer, or its error once (an error is never stored)
        const ok = shared.status === 200;
        lookup(ok ? 'hit' : 'error');
        c.res = respond(shared, c.var.requestId, ok ? 'hit' : 'miss');
        return;
      }
    }
    let finish!: (value: CachedResponse | null) => void;
    inflight.set(
      key,
      new Promise((resolve) => {
        finish = resolve;
      }),
    );
    const tags = new Set<string>([`org:${orgId}`]);
    c.set('cacheTags', tags);
    try {
      await next();
      const res = c.res;
      if (res.status >= 500 && cached && now() <= cached.freshUntil + config.staleIfErrorMs) {
        // stale-if-error: the database failed, the last value is still within its grace
        lookup('stale');
        c.res = respond(cached, c.var.requestId, 'stale');
        finish(cached);
        return;
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
        return;
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
      await guarded(() => store.set(key, entry, [...tags], ttl + config.staleIfErrorMs), undefined);
      c.res.headers.set('X-Cache', 'miss');
    } finally {
      inflight.delete(key);
      inflightWaiters.delete(key);
      finish(null);
    }
  };

  return {
    middleware,
    invalidate(rows) {
      const mode = config.invalidation;
      return traced(
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

function respond(
  entry: CachedResponse,
  requestId: string,
  state: 'hit' | 'miss' | 'stale',
): Response {
  const headers = new Headers(entry.headers);
  headers.set('X-Request-Id', requestId);
  headers.set('X-Cache', state);
  if (state === 'stale') headers.set('Warning', '110 - "Response is Stale"');
  return new Response(entry.body, { status: entry.status, headers });
}

/**
 * The `edge` level, on every runtime: a strong ETag over the body of each 200 GET,
 * `304 Not Modified` for a matching `If-None-Match`, and Cache-Control. Authenticated
 * answers are `private`; `no-cache` (revalidate every time) is the default because a
 * pushed change must be visible on the next fetch, which a stale-while-revalidate hit
 * would not guarantee.
 */
export function httpValidators(config: ResolvedCacheConfig): MiddlewareHandler<AppEnv> {
  const cacheControl =
    config.staleWhileRevalidateSec > 0
      ? `private, max-age=0, stale-while-revalidate=${config.staleWhileRevalidateSec}`
      : 'private, no-cache';
  return async function httpValidators(c, next) {
    await next();
    if (c.req.method !== 'GET' || c.res.status !== 200) return;
    const body = await c.res.clone().arrayBuffer();
    const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', body));
    let hex = '';
    for (const byte of digest.subarray(0, 12)) hex += byte.toString(16).padStart(2, '0');
    const etag = `"${hex}"`;
    const matches = (c.req.header('if-none-match') ?? '')
      .split(',')
      .map((tag) => tag.trim().replace(/^W\//, ''))
      .includes(etag);
    if (matches) {
      const headers = new Headers(c.res.headers);
      headers.delete('content-type');
      headers.delete('content-length');
      c.res = new Response(null, { status: 304, headers });
    }
    c.res.headers.set('ETag', etag);
    c.res.headers.set('Cache-Control', cacheControl);
  };
}
