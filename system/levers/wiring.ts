import type { Redis } from 'ioredis';
import type { AppOptions } from '../api/app.ts';
import { directLoaders } from '../db/loaders.ts';
import { type BatchHooks, batchedLoaders } from './batch.ts';
import { type CacheHooks, createResponseCache } from './cache.ts';
import { redisStore } from './cache-redis.ts';
import { memoryStore } from './cache-store.ts';
import type { ResolvedLevers } from './presets.ts';

/**
 * Resolved levers -> the app options that switch them on. One place, used by the Node
 * entry, the tests and the benches, so every one of them runs the same levers the same
 * way. (The recovery lever wraps the database itself; see `createDbGuard`.)
 */
export function leverAppOptions(
  levers: ResolvedLevers,
  deps: { redis?: Redis | undefined; cacheHooks?: CacheHooks; batchHooks?: BatchHooks } = {},
): Pick<AppOptions, 'loaders' | 'coalesce' | 'cache'> {
  const { cache } = levers;
  if (cache.enabled && cache.level === 'distributed' && !deps.redis) {
    throw new TypeError(`preset ${levers.preset}: the distributed cache needs a Redis connection`);
  }
  const responses =
    cache.enabled && cache.level !== 'edge'
      ? createResponseCache(
          cache,
          cache.level === 'distributed' && deps.redis ? redisStore(deps.redis) : memoryStore(),
          deps.cacheHooks,
        )
      : undefined;
  return {
    loaders: levers.batch.enabled ? batchedLoaders(levers.batch, deps.batchHooks) : directLoaders,
    coalesce: levers.coalesce,
    cache: { config: cache, responses },
  };
}
