import { Redis } from 'ioredis';
import type { CachedResponse, CacheStore } from './cache-store.ts';

/**
 * The distributed store: Redis, shared by every app process. Entries are JSON strings
 * with a TTL; each tag is a Redis set of keys (expiring with its longest entry); the
 * per-org generation is a counter. Errors propagate: the cache lever's breaker turns
 * them into misses, so a Redis outage degrades to database reads, never to failures.
 */
export function redisStore(redis: Redis, prefix = 'dataflow:cache:'): CacheStore {
  const entryKey = (key: string) => `${prefix}e:${key}`;
  const tagKey = (tag: string) => `${prefix}t:${tag}`;
  const genKey = (orgId: string) => `${prefix}g:${orgId}`;
  return {
    level: 'distributed',
    async get(key) {
      const raw = await redis.get(entryKey(key));
      return raw === null ? undefined : (JSON.parse(raw) as CachedResponse);
    },
    async set(key, value, tags, keepMs) {
      const px = Math.max(1, Math.round(keepMs));
      const multi = redis.multi().set(entryKey(key), JSON.stringify(value), 'PX', px);
      for (const tag of tags) {
        multi.sadd(tagKey(tag), key);
        // GT: never shorten a tag set that also indexes longer-lived entries (Redis 7)
        multi.pexpire(tagKey(tag), px, 'GT');
        multi.pexpire(tagKey(tag), px, 'NX');
      }
      await multi.exec();
    },
    async invalidateTags(tags) {
      let removed = 0;
      for (const tag of tags) {
        const keys = await redis.smembers(tagKey(tag));
        if (keys.length > 0) removed += await redis.del(...keys.map(entryKey));
        await redis.del(tagKey(tag));
      }
      return removed;
    },
    async generation(orgId) {
      return Number((await redis.get(genKey(orgId))) ?? 0);
    },
    async bumpGeneration(orgId) {
      await redis.incr(genKey(orgId));
    },
  };
}

/**
 * The distributed store on its own connection: short command timeouts and no offline
 * queue, so a Redis outage fails fast into the lever's breaker instead of queueing.
 */
export function connectRedisStore(
  url: string,
  onError: (error: unknown) => void,
): CacheStore & { close(): void } {
  const redis = new Redis(url, {
    commandTimeout: 200,
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
  });
  redis.on('error', onError);
  return { ...redisStore(redis), close: () => redis.disconnect() };
}
