import { and, asc, count, eq, gt, isNull, sql } from 'drizzle-orm';
import type { Db } from '../database.ts';
import { preparedPerDb } from '../prepared.ts';
import { type Membership, memberships, type User, users } from '../schema.ts';

const membershipByOrgUser = preparedPerDb((db) =>
  db
    .select()
    .from(memberships)
    .where(
      and(
        eq(memberships.orgId, sql.placeholder('orgId')),
        eq(memberships.userId, sql.placeholder('userId')),
        isNull(memberships.deletedAt),
      ),
    )
    .limit(1)
    .prepare(),
);

/** The live membership of a user in an organization, if any. */
export async function getMembership(
  db: Db,
  orgId: string,
  userId: string,
): Promise<Membership | null> {
  return (await membershipByOrgUser(db).get({ orgId, userId })) ?? null;
}

export interface Page {
  /** Exclusive lower bound on the sort key (the last id of the previous page). */
  after?: string | undefined;
  limit: number;
}

/** The live memberships of an org after the page's cursor (ordered by id, `limit + 1` rows). */
const onPage = (orgId: string, page: Page) =>
  and(
    eq(memberships.orgId, orgId),
    isNull(memberships.deletedAt),
    page.after === undefined ? undefined : gt(memberships.id, page.after),
  );

/**
 * One page of an organization's live memberships, ordered by membership id. Returns
 * up to `limit + 1` rows so the caller knows whether another page exists.
 */
export function listMemberships(db: Db, orgId: string, page: Page): Promise<Membership[]> {
  return db
    .select()
    .from(memberships)
    .where(onPage(orgId, page))
    .orderBy(asc(memberships.id))
    .limit(page.limit + 1);
}

/**
 * The same page with each member's live user (null for a tombstoned one), in one joined
 * read: the batched form of "the page, then one user lookup per member".
 */
export function listMembersWithUsers(
  db: Db,
  orgId: string,
  page: Page,
): Promise<Array<{ membership: Membership; user: User | null }>> {
  return db
    .select({ membership: memberships, user: users })
    .from(memberships)
    .leftJoin(users, and(eq(users.id, memberships.userId), isNull(users.deletedAt)))
    .where(onPage(orgId, page))
    .orderBy(asc(memberships.id))
    .limit(page.limit + 1);
}

/** The live memberships of a user (the organizations they belong to). */
export function listUserMemberships(db: Db, userId: string): Promise<Membership[]> {
  return db
    .select()
    .from(memberships)
    .where(and(eq(memberships.userId, userId), isNull(memberships.deletedAt)))
    .orderBy(asc(memberships.orgId));
}

export async function countMembers(db: Db, orgId: string): Promise<number> {
  const rows = await db
    .select({ n: count() })
    .from(memberships)
    .where(and(eq(memberships.orgId, orgId), isNull(memberships.deletedAt)));
  return rows[0]?.n ?? 0;
}
