import { and, eq, inArray, isNull, sql } from 'drizzle-orm';
import type { Db } from '../database.ts';
import { preparedPerDb } from '../prepared.ts';
import { type Organization, organizations } from '../schema.ts';

const orgById = preparedPerDb((db) =>
  db
    .select()
    .from(organizations)
    .where(and(eq(organizations.id, sql.placeholder('id')), isNull(organizations.deletedAt)))
    .limit(1)
    .prepare(),
);

/** One live organization by id. */
export async function getOrg(db: Db, id: string): Promise<Organization | null> {
  return (await orgById(db).get({ id })) ?? null;
}

/** Live organizations by id, in one `IN (...)` query. */
export function getOrgs(db: Db, ids: readonly string[]): Promise<Organization[]> {
  if (ids.length === 0) return Promise.resolve([]);
  return db
    .select()
    .from(organizations)
    .where(and(inArray(organizations.id, [...ids]), isNull(organizations.deletedAt)));
}
