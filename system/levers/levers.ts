import { directLoaders, type LoadersFactory } from '../db/loaders.ts';
import type { ChangeRow } from '../db/schema.ts';
import { type BatchHooks, batchedLoaders } from './batch.ts';
import { type CacheHooks, createResponseCache, type ResponseCache } from './cache.ts';
import { type CacheStore, memoryStore } from './cache-store.ts';
import { type CoalesceHooks, type Coalescer, createCoalescer } from './coalesce.ts';
import { createMembershipCache, type MembershipCache } from './membership-cache.ts';
import type { ResolvedLevers } from './presets.ts';

/**
 * Resolved levers -> the running levers: one factory, used by the Node entry, the
 * tests and the benches, so every one of them runs the same levers the same way. The
 * HTTP adapters in `api/middleware/` put them on the request path. (The recovery lever
 * wraps the database itself; see `createDbGuard`.)
 */
export interface Levers {
  readonly config: ResolvedLevers;
  /** How handlers load single entities: one query each, or batched. */
  readonly loaders: LoadersFactory;
  /** Identical in-flight reads share one execution (when on). */
  readonly coalescer: Coalescer | undefined;
  /** The server-side response cache, `memory` or `distributed` (when on). */
  readonly responses: ResponseCache | undefined;
  /** The `edge` level: HTTP validators (ETag/304, Cache-Control) instead of a store. */
  readonly httpValidators: boolean;
  /** The membership check cached in process, with the response cache (`memory`, `distributed`). */
  readonly memberships: MembershipCache | undefined;
  /** For the change-log publisher: invalidates what committed rows touched. */
  invalidate(rows: readonly ChangeRow[]): Promise<void>;
  /** Releases what the levers hold (the distributed store's connection). */
  close(): Promise<void>;
}

export interface LeverDeps {
  /** The distributed level's store (Redis on Node); required by that level. */
  distributedStore?: CacheStore & { close?(): Promise<void> | void };
  cacheHooks?: CacheHooks;
  batchHooks?: BatchHooks;
  coalesceHooks?: CoalesceHooks;
}

export function createLevers(config: ResolvedLevers, deps: LeverDeps = {}): Levers {
  const { cache } = config;
  if (cache.enabled && cache.level === 'distributed' && !deps.distributedStore) {
    throw new TypeError(`preset ${config.preset}: the distributed cache needs a Redis connection`);
  }
  const store = cache.level === 'distributed' ? deps.distributedStore : memoryStore();
  const responses =
    cache.enabled && cache.level !== 'edge' && store
      ? createResponseCache(cache, store, deps.cacheHooks)
      : undefined;
  const memberships = responses ? createMembershipCache({ ttlMs: cache.ttl }) : undefined;
  const loaders = config.batch.enabled
    ? batchedLoaders(config.batch, deps.batchHooks)
    : directLoaders;
  return {
    config,
    loaders: memberships ? memberships.wrap(loaders) : loaders,
    memberships,
    coalescer: config.coalesce.enabled
      ? createCoalescer(config.coalesce, deps.coalesceHooks)
      : undefined,
    responses,
    httpValidators: cache.enabled && cache.level === 'edge',
    invalidate: async (rows) => {
      memberships?.invalidate(rows);
      await responses?.invalidate(rows);
    },
    close: async () => {
      await deps.distributedStore?.close?.();
    },
  };
}
