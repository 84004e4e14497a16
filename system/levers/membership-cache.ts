import { LRUCache } from 'lru-cache';
import type { LoadersFactory } from '../db/loaders.ts';
import type { ChangeRow, Membership } from '../db/schema.ts';

/**
 * The membership check, cached: every org request re-checks the caller's membership
 * (a session token outlives a membership removal), and with the response cache on that
 * check was the only database work left on a hit. Live memberships are kept in an
 * in-process LRU; the change log invalidates them precisely, before the realtime push
 * and before the write that caused it answers:
 *
 * - a membership row (created, updated: the role is cached too, deleted): that pair;
 * - a user deleted: that user in every org the change names;
 * - an organization deleted: every member of that org.
 *
 * "Not a member" is never cached. A lookup that raced with an invalidation is not
 * stored (the row it read may be the one the invalidation was for). The TTL is a
 * safety net for a process that misses a wake-up; every process invalidates from the
 * shared change log (the publisher), so a membership ended by a webhook is refused on
 * the next request here, and on other processes once their publisher has read the log.
 */
export interface MembershipCacheOptions {
  /** @default 10000 */
  max?: number;
  ttlMs: number;
}

export interface MembershipCache {
  /** Loaders whose `membership` lookup goes through the cache. */
  wrap(factory: LoadersFactory): LoadersFactory;
  invalidate(rows: readonly ChangeRow[]): void;
  /** Entries held (telemetry, tests). */
  size(): number;
}

const PAIR = '\u0000';

export function createMembershipCache(options: MembershipCacheOptions): MembershipCache {
  const entries = new LRUCache<string, Membership>({
    max: options.max ?? 10_000,
    ttl: options.ttlMs,
  });
  /** Bumped by every invalidation; a lookup that saw it move does not store. */
  let invalidations = 0;
  const dropOrg = (orgId: string) => {
    for (const key of entries.keys()) if (key.startsWith(`${orgId}${PAIR}`)) entries.delete(key);
  };
  return {
    wrap: (factory) => (db) => {
      const inner = factory(db);
      return {
        ...inner,
        async membership(orgId, userId) {
          const key = `${orgId}${PAIR}${userId}`;
          const cached = entries.get(key);
          if (cached !== undefined) return cached;
          const seen = invalidations;
          const member = await inner.membership(orgId, userId);
          if (member !== null && seen === invalidations) entries.set(key, member);
          return member;
        },
      };
    },
    invalidate(rows) {
      invalidations += 1;
      for (const row of rows) {
        if (row.entity === 'membership') {
          const userId = userIdOf(row);
          if (userId === null) dropOrg(row.orgId);
          else entries.delete(`${row.orgId}${PAIR}${userId}`);
        } else if (row.entity === 'user' && row.op === 'delete') {
          entries.delete(`${row.orgId}${PAIR}${row.entityId}`);
        } else if (row.entity === 'organization' && row.op === 'delete') {
          dropOrg(row.entityId);
        }
      }
    },
    size: () => entries.size,
  };
}

/** The member a membership change is about; null when the row does not say (drop the org). */
function userIdOf(row: ChangeRow): string | null {
  try {
    const userId = (JSON.parse(row.data) as { userId?: unknown }).userId;
    return typeof userId === 'string' ? userId : null;
  } catch {
    return null;
  }
}
