import { LRUCache } from 'lru-cache';

/**
 * Where the cache lever keeps responses. An entry carries the tags of the rows it was
 * built from (`user:<id>`, `members:<org>`…), so precise invalidation can delete exactly
 * the entries a change touched; a per-org generation number is part of every key, so
 * group invalidation is one increment.
 */
export interface CachedResponse {
  status: number;
  headers: Array<[string, string]>;
  body: string;
  /** Epoch ms after which the entry is stale (still usable for stale-if-error). */
  freshUntil: number;
}

export interface CacheStore {
  readonly level: 'memory' | 'edge' | 'distributed';
  get(key: string): Promise<CachedResponse | undefined>;
  /** `keepMs`: how long to keep the entry at all (fresh time + stale-if-error time). */
  set(key: string, value: CachedResponse, tags: readonly string[], keepMs: number): Promise<void>;
  /** Deletes every entry carrying one of the tags. */
  invalidateTags(tags: readonly string[]): Promise<number>;
  generation(orgId: string): Promise<number>;
  bumpGeneration(orgId: string): Promise<void>;
}

/** In-process store: a bounded LRU (lru-cache) with per-entry TTL and a tag index. */
export function memoryStore(options: { maxEntries?: number } = {}): CacheStore {
  const tagIndex = new Map<string, Set<string>>();
  const entries = new LRUCache<string, { value: CachedResponse; tags: readonly string[] }>({
    max: options.maxEntries ?? 10_000,
    ttlAutopurge: false,
    // keep the tag index bounded with the entries
    dispose: (entry, key) => {
      for (const tag of entry.tags) {
        const keys = tagIndex.get(tag);
        keys?.delete(key);
        if (keys?.size === 0) tagIndex.delete(tag);
      }
    },
  });
  const generations = new Map<string, number>();
  return {
    level: 'memory',
    get: async (key) => entries.get(key)?.value,
    async set(key, value, tags, keepMs) {
      entries.set(key, { value, tags }, { ttl: Math.max(1, Math.round(keepMs)) });
      for (const tag of tags) {
        let keys = tagIndex.get(tag);
        if (!keys) {
          keys = new Set();
          tagIndex.set(tag, keys);
        }
        keys.add(key);
      }
    },
    async invalidateTags(tags) {
      let removed = 0;
      for (const tag of tags) {
        for (const key of [...(tagIndex.get(tag) ?? [])]) {
          if (entries.delete(key)) removed += 1;
        }
      }
      return removed;
    },
    generation: async (orgId) => generations.get(orgId) ?? 0,
    async bumpGeneration(orgId) {
      generations.set(orgId, (generations.get(orgId) ?? 0) + 1);
    },
  };
}
