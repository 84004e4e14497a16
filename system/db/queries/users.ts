import { and, eq, inArray, isNull, sql } from 'drizzle-orm';
import { alias } from 'drizzle-orm/sqlite-core';
import type { Db } from '../database.ts';
import { preparedPerDb } from '../prepared.ts';
import { memberships, type User, users } from '../schema.ts';

const userById = preparedPerDb((db) =>
  db
    .select()
    .from(users)
    .where(and(eq(users.id, sql.placeholder('id')), isNull(users.deletedAt)))
    .limit(1)
    .prepare(),
);

/** One live (not tombstoned) user by id. */
export async function getUser(db: Db, id: string): Promise<User | null> {
  return (await userById(db).get({ id })) ?? null;
}

/** Live users by id, in one `IN (...)` query; order follows the database, not `ids`. */
export function getUsers(db: Db, ids: readonly string[]): Promise<User[]> {
  if (ids.length === 0) return Promise.resolve([]);
  return db
    .select()
    .from(users)
    .where(and(inArray(users.id, [...ids]), isNull(users.deletedAt)));
}

const mine = alias(memberships, 'mine');
const theirs = alias(memberships, 'theirs');

/** True when both users are current members of at least one common organization. */
export async function sharesOrg(db: Db, userId: string, otherUserId: string): Promise<boolean> {
  const rows = await db
    .select({ orgId: mine.orgId })
    .from(mine)
    .innerJoin(theirs, eq(theirs.orgId, mine.orgId))
    .where(
      and(
        eq(mine.userId, userId),
        isNull(mine.deletedAt),
        eq(theirs.userId, otherUserId),
        isNull(theirs.deletedAt),
      ),
    )
    .limit(1);
  return rows.length > 0;
}
