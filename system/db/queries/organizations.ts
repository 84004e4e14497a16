import { and, eq, inArray, isNull } from 'drizzle-orm';
import type { Db } from '../database.ts';
import { type Organization, organizations } from '../schema.ts';

/** One live organization by id. */
export async function getOrg(db: Db, id: string): Promise<Organization | null> {
  const rows = await db
    .select()
    .from(organizations)
    .where(and(eq(organizations.id, id), isNull(organizations.deletedAt)))
    .limit(1);
  return rows[0] ?? null;
}

/** Live organizations by id, in one `IN (...)` query. */
export function getOrgs(db: Db, ids: readonly string[]): Promise<Organization[]> {
  if (ids.length === 0) return Promise.resolve([]);
  return db
    .select()
    .from(organizations)
    .where(and(inArray(organizations.id, [...ids]), isNull(organizations.deletedAt)));
}
