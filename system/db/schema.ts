import { index, integer, sqliteTable, text, uniqueIndex } from 'drizzle-orm/sqlite-core';

/**
 * Clerk-mirrored tables use Clerk's ids as primary keys and keep Clerk's own
 * `created_at` / `updated_at` (epoch milliseconds): the webhook sync orders updates by
 * them. Deletes are tombstones (`deleted_at`) so a late, stale update cannot bring a
 * deleted row back.
 *
 * There are no foreign keys on purpose: Svix delivers out of order, so a membership
 * can arrive before its user or organization and must still be stored.
 */

const timestamps = {
  createdAt: integer('created_at').notNull(),
  updatedAt: integer('updated_at').notNull(),
  deletedAt: integer('deleted_at'),
};

export const organizations = sqliteTable('organizations', {
  id: text('id').primaryKey(),
  name: text('name').notNull(),
  slug: text('slug'),
  imageUrl: text('image_url'),
  /** JSON text of Clerk's `public_metadata`. */
  publicMetadata: text('public_metadata').notNull().default('{}'),
  ...timestamps,
});

export const users = sqliteTable('users', {
  id: text('id').primaryKey(),
  /** The user's primary email address (Clerk `primary_email_address_id` resolved). */
  email: text('email'),
  firstName: text('first_name'),
  lastName: text('last_name'),
  imageUrl: text('image_url'),
  publicMetadata: text('public_metadata').notNull().default('{}'),
  ...timestamps,
});

export const memberships = sqliteTable(
  'memberships',
  {
    id: text('id').primaryKey(),
    orgId: text('org_id').notNull(),
    userId: text('user_id').notNull(),
    /** Normalized role: `admin` or `member` (Clerk `org:admin`, legacy `admin`/`basic_member`). */
    role: text('role').notNull(),
    ...timestamps,
  },
  (t) => [
    // members of an org, paginated by membership id; also answers "is user X a member"
    uniqueIndex('memberships_org_user').on(t.orgId, t.userId),
    index('memberships_org_id').on(t.orgId, t.id),
    // orgs of a user
    index('memberships_user_org').on(t.userId, t.orgId),
  ],
);

export const projectStatuses = ['active', 'archived'] as const;
export type ProjectStatus = (typeof projectStatuses)[number];

/** The app's own org-scoped resource, so the app has a write path of its own. */
export const projects = sqliteTable(
  'projects',
  {
    id: text('id').primaryKey(),
    orgId: text('org_id').notNull(),
    name: text('name').notNull(),
    status: text('status', { enum: projectStatuses }).notNull().default('active'),
    createdBy: text('created_by').notNull(),
    /** Incremented by every write; the change log carries it as the entity version. */
    version: integer('version').notNull().default(1),
    ...timestamps,
  },
  (t) => [index('projects_org_id').on(t.orgId, t.id)],
);

export type Organization = typeof organizations.$inferSelect;
export type User = typeof users.$inferSelect;
export type Membership = typeof memberships.$inferSelect;
export type Project = typeof projects.$inferSelect;
