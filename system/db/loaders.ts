import type { Db } from './database.ts';
import { getMembership, listMemberships, type Page } from './queries/memberships.ts';
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
  /**
   * A page of an org's live memberships (up to `limit + 1`, so the caller knows whether
   * another page exists), with the user of each of the first `limit`. Direct: the page,
   * then one lookup per member, the audit's N+1. Batched: one joined read.
   */
  membersPage(orgId: string, page: Page): Promise<MembersPage>;
}

export interface MembersPage {
  rows: Membership[];
  /** `users[i]` is the user of `rows[i]` (null when tombstoned), for the first `limit` rows. */
  users: Array<User | null>;
}

export type LoadersFactory = (db: Db) => Loaders;

export const directLoaders: LoadersFactory = (db) => ({
  user: (id) => getUser(db, id),
  org: (id) => getOrg(db, id),
  membership: (orgId, userId) => getMembership(db, orgId, userId),
  async membersPage(orgId, page) {
    const rows = await listMemberships(db, orgId, page);
    // one query per member: N+1 round trips without the batching lever
    const users = await Promise.all(rows.slice(0, page.limit).map((m) => getUser(db, m.userId)));
    return { rows, users };
  },
});
