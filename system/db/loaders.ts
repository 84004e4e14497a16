import type { Db } from './database.ts';
import { getMembership } from './queries/memberships.ts';
import { getOrg } from './queries/organizations.ts';
import { getUser } from './queries/users.ts';
import type { Membership, Organization, User } from './schema.ts';

/**
 * Loader-shaped access to single entities. Route handlers load related rows one at a
 * time through these; `directLoaders` issues one query per call, which is the audit's
 * "multiple round trips" baseline (a members page of 50 costs 50 user queries). The
 * batching lever provides the same interface backed by `IN (...)` batches.
 */
export interface Loaders {
  user(id: string): Promise<User | null>;
  org(id: string): Promise<Organization | null>;
  membership(orgId: string, userId: string): Promise<Membership | null>;
}

export type LoadersFactory = (db: Db) => Loaders;

export const directLoaders: LoadersFactory = (db) => ({
  user: (id) => getUser(db, id),
  org: (id) => getOrg(db, id),
  membership: (orgId, userId) => getMembership(db, orgId, userId),
});
