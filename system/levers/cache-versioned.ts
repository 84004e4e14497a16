import type { LRUCache } from 'lru-cache';
import type { LoadersFactory } from '../db/loaders.ts';
import type { Membership } from '../db/schema.ts';
import { type CachedResponse, type CacheStore, memoryStore } from './cache-store.ts';

/**
 * Caches for runtimes where no process sees every change (Workers: many isolates, many
 * colos, no shared memory, entries that cannot be deleted everywhere). Nothing is ever
 * deleted; instead every key carries the org's generation, read per request from one
 * authority that every write advances before it answers (the org's Durable Object on
 * Workers, whose generation is the id of the org's last change-log row). A committed
 * write moves the generation, so the next read builds new keys: no stale read, in any
 * isolate or colo, whatever the store's own consistency. Old entries simply age out.
 *
 * The price: invalidation is always per org (`group`), whatever `invalidation` says,
 * and each read pays one call to the authority (the cache hit's only remote hop).
 */
export type Generation = (orgId: string) => Promise<number>;

/** Where versioned entries live: a key-value store with a time to live. */
export interface EntryStore {
  get(key: string): Promise<CachedResponse | undefined>;
  set(key: string, value: CachedResponse, keepMs: number): Promise<void>;
}

/** A `CacheStore` over `entries` whose generations come from `generation`. */
export function versionedStore(
  level: CacheStore['level'],
  entries: EntryStore,
  generation: Generation,
): CacheStore {
  return {
    level,
    get: (key) => entries.get(key),
    set: (key, value, _tags, keepMs) => entries.set(key, value, keepMs),
    // a write advances the authority's generation; there is nothing to delete
    invalidateTags: async () => 0,
    generation,
    bumpGeneration: async () => {},
  };
}

/** Entries in this isolate's memory (the `memory` level): the memory store, untagged. */
export function memoryEntries(): EntryStore {
  const store = memoryStore();
  return { get: store.get, set: (key, value, keepMs) => store.set(key, value, [], keepMs) };
}

/** The part of the Workers Cache API (`caches.default`) used here. */
export interface CacheApi {
  match(request: Request): Promise<Response | undefined>;
  put(request: Request, response: Response): Promise<void>;
}

/**
 * Entries in the Workers Cache API (the `edge` level): per colo, kept for `keepMs` by
 * Cache-Control. Keys become URLs of a host that is never fetched.
 */
export function cacheApiEntries(cache: CacheApi): EntryStore {
  const request = (key: string) =>
    new Request(`https://dataflow-cache.invalid/${encodeURIComponent(key)}`);
  return {
    async get(key) {
      const res = await cache.match(request(key));
      return res ? ((await res.json()) as CachedResponse) : undefined;
    },
    async set(key, value, keepMs) {
      const seconds = Math.max(1, Math.ceil(keepMs / 1000));
      await cache.put(
        request(key),
        new Response(JSON.stringify(value), {
          headers: { 'content-type': 'application/json', 'cache-control': `max-age=${seconds}` },
        }),
      );
    },
  };
}

/** The part of a Workers KV namespace used here. */
export interface KvNamespace {
  get(key: string, type: 'json'): Promise<unknown>;
  put(key: string, value: string, options: { expirationTtl: number }): Promise<void>;
}

/** Workers KV keeps a key at least 60 s. */
const KV_MIN_TTL_SECONDS = 60;

/**
 * Entries in Workers KV (the `distributed` level): global, eventually consistent (a
 * write can take up to about a minute to be read in other colos). Only new keys are
 * written, so a colo that does not see one yet misses and reads the database: KV's
 * lag costs hits, never freshness.
 */
export function kvEntries(kv: KvNamespace): EntryStore {
  return {
    get: async (key) => ((await kv.get(key, 'json')) as CachedResponse | null) ?? undefined,
    async set(key, value, keepMs) {
      const expirationTtl = Math.max(KV_MIN_TTL_SECONDS, Math.ceil(keepMs / 1000));
      await kv.put(key, JSON.stringify(value), { expirationTtl });
    },
  };
}

/**
 * The membership check, cached by generation: a membership ended by a change moves the
 * org's generation, so its entry is never read again. "Not a member" is never cached.
 */
export function versionedMemberships(
  entries: LRUCache<string, Membership>,
  generation: Generation,
): (factory: LoadersFactory) => LoadersFactory {
  return (factory) => (db) => {
    const inner = factory(db);
    return {
      ...inner,
      async membership(orgId, userId) {
        const key = `${orgId}|g${await generation(orgId)}|${userId}`;
        const cached = entries.get(key);
        if (cached !== undefined) return cached;
        const member = await inner.membership(orgId, userId);
        if (member !== null) entries.set(key, member);
        return member;
      },
    };
  };
}
