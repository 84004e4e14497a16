import { and, inArray, isNull, sql } from 'drizzle-orm';
import type { Db } from '../database.ts';
import { type Membership, memberships } from '../schema.ts';

export { getOrgs } from './organizations.ts';
export { getUsers } from './users.ts';

/** Live memberships for many (org, user) pairs in one query (SQLite row values). */
export function getMembershipsByPairs(
  db: Db,
  pairs: ReadonlyArray<readonly [orgId: string, userId: string]>,
): Promise<Membership[]> {
  if (pairs.length === 0) return Promise.resolve([]);
  const values = sql.join(
    pairs.map(([orgId, userId]) => sql`(${orgId}, ${userId})`),
    sql`, `,
  );
  return db
    .select()
    .from(memberships)
    .where(
      and(
        inArray(memberships.orgId, [...new Set(pairs.map(([orgId]) => orgId))]),
        sql`(${memberships.orgId}, ${memberships.userId}) IN (VALUES ${values})`,
        isNull(memberships.deletedAt),
      ),
    );
}
