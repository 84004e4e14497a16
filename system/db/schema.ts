import { sql } from 'drizzle-orm';
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
    // one live membership per (org, user); tombstones of earlier memberships may remain
    uniqueIndex('memberships_org_user_live').on(t.orgId, t.userId).where(sql`deleted_at IS NULL`),
    // members of an org, paginated by membership id
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

/**
 * Svix deliveries seen, by `svix-id`: a replay or a concurrent duplicate finds its row
 * and is answered 2xx without being applied again. `claim` is a per-attempt nonce: the
 * apply statements of a delivery only run when the row carries their own claim, which
 * is what makes "insert if new, then apply" one atomic batch.
 */
export const webhookDeliveries = sqliteTable(
  'webhook_deliveries',
  {
    svixId: text('svix_id').primaryKey(),
    claim: text('claim').notNull(),
    eventType: text('event_type'),
    /** `processed` (applied or stale), `ignored` (unhandled type), `dead_letter`. */
    outcome: text('outcome', { enum: ['processed', 'ignored', 'dead_letter'] }).notNull(),
    /** `svix-timestamp`, epoch ms. */
    sentAt: integer('sent_at'),
    receivedAt: integer('received_at').notNull(),
  },
  (t) => [index('webhook_deliveries_received_at').on(t.receivedAt)],
);

/** Signed but unusable webhook payloads, kept verbatim for inspection and replay. */
export const deadLetters = sqliteTable('dead_letters', {
  id: integer('id').primaryKey({ autoIncrement: true }),
  svixId: text('svix_id').notNull(),
  eventType: text('event_type'),
  reason: text('reason').notNull(),
  /** The raw, verified request body. */
  payload: text('payload').notNull(),
  receivedAt: integer('received_at').notNull(),
  replayedAt: integer('replayed_at'),
});

export const changeEntities = ['user', 'organization', 'membership', 'project'] as const;
export type ChangeEntity = (typeof changeEntities)[number];
export type ChangeOp = 'upsert' | 'delete';

/**
 * The outbox: one row per committed change, appended in the same transaction as the
 * change itself. The AUTOINCREMENT id is the event id clients resume from: SQLite
 * commits one writer at a time, so ids become visible in order and a reader that
 * follows `id > last` never skips one.
 */
export const changeLog = sqliteTable(
  'change_log',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    orgId: text('org_id').notNull(),
    entity: text('entity', { enum: changeEntities }).notNull(),
    entityId: text('entity_id').notNull(),
    op: text('op', { enum: ['upsert', 'delete'] }).notNull(),
    /** Entity version: Clerk `updated_at` (ms) for mirrored entities, the row version for projects. */
    version: integer('version').notNull(),
    /** Minimal JSON data for clients (never secrets or profile details). */
    data: text('data').notNull().default('{}'),
    /** W3C `traceparent` of the request that caused the change, if any. */
    traceContext: text('trace_context'),
    createdAt: integer('created_at').notNull(),
  },
  (t) => [index('change_log_org_id').on(t.orgId, t.id)],
);

export type ChangeRow = typeof changeLog.$inferSelect;
export type DeadLetter = typeof deadLetters.$inferSelect;
