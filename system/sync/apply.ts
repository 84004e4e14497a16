import type { Client, InStatement } from '@libsql/client';
import { CHANGE_ROW_RETURNING, changeRowOf } from '../db/queries/changes.ts';
import type { ChangeRow } from '../db/schema.ts';
import type { ClerkChange, ParsedEvent } from './clerk-events.ts';

/**
 * Applies one verified delivery as ONE write batch (one transaction, one round trip
 * to sqld), exactly once in effect:
 *
 * 1. `INSERT … ON CONFLICT DO NOTHING` the delivery row with a fresh `claim` nonce.
 * 2. Every following statement is guarded by "the delivery row carries my claim", so a
 *    replay, or a concurrent duplicate that lost the race for the row, changes nothing.
 * 3. Upserts are ordered by Clerk's `updated_at` (stale updates change nothing), deletes
 *    are tombstones that no later update can undo, and a membership that arrives before
 *    its user or org is stored as is: the end state matches in-order delivery.
 * 4. Each real change appends a change-log row in the same batch (`changes() > 0`
 *    reads the statement just before it), so the outbox can never disagree with the data.
 *    The appended rows come back (`RETURNING`) for the publisher to hand on.
 *
 * The batch commits or rolls back whole; the route answers 2xx only after it resolves.
 */

export interface Delivery {
  svixId: string;
  /** svix-timestamp, epoch ms. */
  sentAt: number;
  receivedAt: number;
  /** Raw verified body, kept for dead letters. */
  body: string;
  /** W3C traceparent of the webhook request, carried into the change log. */
  traceContext: string | null;
}

export type ApplyOutcome = 'applied' | 'stale' | 'duplicate' | 'ignored' | 'dead_letter';

export interface Applied {
  outcome: ApplyOutcome;
  /** The change-log rows this delivery appended, ids ascending (none unless applied). */
  changes: ChangeRow[];
}

/** `client`: the database's, or one whose spans nest under the caller's (`Database.clientUnder`). */
export async function applyDelivery(
  client: Pick<Client, 'batch'>,
  delivery: Delivery,
  parsed: ParsedEvent,
): Promise<Applied> {
  const claim = crypto.randomUUID();
  const guard = {
    sql: 'EXISTS (SELECT 1 FROM webhook_deliveries WHERE svix_id = ? AND claim = ?)',
    args: [delivery.svixId, claim],
  };
  const outcome =
    parsed.kind === 'change' ? 'processed' : parsed.kind === 'ignored' ? 'ignored' : 'dead_letter';
  const record: InStatement = {
    sql: `INSERT INTO webhook_deliveries (svix_id, claim, event_type, outcome, sent_at, received_at)
          VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (svix_id) DO NOTHING`,
    args: [delivery.svixId, claim, parsed.type, outcome, delivery.sentAt, delivery.receivedAt],
  };

  let statements: InStatement[] = [];
  if (parsed.kind === 'change') {
    statements = changeStatements(parsed.change, guard, delivery);
  } else if (parsed.kind === 'unusable') {
    statements = [
      {
        sql: `INSERT INTO dead_letters (svix_id, event_type, reason, payload, received_at)
              SELECT ?, ?, ?, ?, ? WHERE ${guard.sql}`,
        args: [
          delivery.svixId,
          parsed.type,
          parsed.reason,
          delivery.body,
          delivery.receivedAt,
          ...guard.args,
        ],
      },
    ];
  }
  const results = await client.batch([record, ...statements], 'write');
  if (results[0]!.rowsAffected === 0) return { outcome: 'duplicate', changes: [] };
  if (parsed.kind !== 'change') {
    return { outcome: outcome === 'ignored' ? 'ignored' : 'dead_letter', changes: [] };
  }
  // only the change-log inserts return rows
  const changes = results.flatMap((result) => result.rows.map(changeRowOf));
  const changed = results.slice(1).some((r) => r.rowsAffected > 0);
  return { outcome: changed ? 'applied' : 'stale', changes };
}

interface Sql {
  sql: string;
  args: (string | number | null)[];
}
type Guard = Sql;

/** The statements for one change; exported for the dead-letter replay and tests. */
export function changeStatements(
  change: ClerkChange,
  guard: Guard,
  delivery: Pick<Delivery, 'receivedAt' | 'traceContext'>,
): InStatement[] {
  const trace = delivery.traceContext;
  const at0 = delivery.receivedAt;
  /** Appends a change-log row per row of `from`, only if the statement before changed something. */
  const log = (entry: {
    org: Sql;
    entity: string;
    entityId: string;
    op: 'upsert' | 'delete';
    version: number;
    data: Sql;
    from: Sql;
  }): InStatement => ({
    sql: `INSERT INTO change_log (org_id, entity, entity_id, op, version, data, trace_context, created_at)
          SELECT ${entry.org.sql}, ?, ?, ?, ?, ${entry.data.sql}, ?, ? ${entry.from.sql} AND changes() > 0
          ${CHANGE_ROW_RETURNING}`,
    args: [
      ...entry.org.args,
      entry.entity,
      entry.entityId,
      entry.op,
      entry.version,
      ...entry.data.args,
      trace,
      at0,
      ...entry.from.args,
    ],
  });
  const noData: Sql = { sql: "'{}'", args: [] };
  const always: Sql = { sql: 'WHERE 1', args: [] };
  const liveMembershipsOf = (userId: string): Sql => ({
    sql: 'FROM memberships m WHERE m.user_id = ? AND m.deleted_at IS NULL',
    args: [userId],
  });

  switch (change.entity) {
    case 'user': {
      if (change.op === 'upsert') {
        const u = change.row;
        return [
          {
            sql: `INSERT INTO users (id, email, first_name, last_name, image_url, public_metadata, created_at, updated_at)
                  SELECT ?, ?, ?, ?, ?, ?, ?, ? WHERE ${guard.sql}
                  ON CONFLICT (id) DO UPDATE SET email = excluded.email, first_name = excluded.first_name,
                    last_name = excluded.last_name, image_url = excluded.image_url,
                    public_metadata = excluded.public_metadata, created_at = excluded.created_at,
                    updated_at = excluded.updated_at
                  WHERE excluded.updated_at > users.updated_at AND users.deleted_at IS NULL`,
            args: [
              u.id,
              u.email,
              u.firstName,
              u.lastName,
              u.imageUrl,
              u.publicMetadata,
              u.createdAt,
              u.updatedAt,
              ...guard.args,
            ],
          },
          // a profile change concerns every org the user is a live member of
          log({
            org: { sql: 'm.org_id', args: [] },
            entity: 'user',
            entityId: u.id,
            op: 'upsert',
            version: u.updatedAt,
            data: noData,
            from: liveMembershipsOf(u.id),
          }),
        ];
      }
      const { id, at } = change;
      return [
        {
          sql: `INSERT INTO users (id, public_metadata, created_at, updated_at, deleted_at)
                SELECT ?, '{}', ?, ?, ? WHERE ${guard.sql}
                ON CONFLICT (id) DO UPDATE SET deleted_at = excluded.deleted_at,
                  updated_at = max(users.updated_at, excluded.updated_at)
                WHERE users.deleted_at IS NULL`,
          args: [id, at, at, at, ...guard.args],
        },
        log({
          org: { sql: 'm.org_id', args: [] },
          entity: 'user',
          entityId: id,
          op: 'delete',
          version: at,
          data: noData,
          from: liveMembershipsOf(id),
        }),
        endMemberships('user_id', id, at, 'users'),
      ];
    }
    case 'organization': {
      if (change.op === 'upsert') {
        const o = change.row;
        return [
          {
            sql: `INSERT INTO organizations (id, name, slug, image_url, public_metadata, created_at, updated_at)
                  SELECT ?, ?, ?, ?, ?, ?, ? WHERE ${guard.sql}
                  ON CONFLICT (id) DO UPDATE SET name = excluded.name, slug = excluded.slug,
                    image_url = excluded.image_url, public_metadata = excluded.public_metadata,
                    created_at = excluded.created_at, updated_at = excluded.updated_at
                  WHERE excluded.updated_at > organizations.updated_at AND organizations.deleted_at IS NULL`,
            args: [
              o.id,
              o.name,
              o.slug,
              o.imageUrl,
              o.publicMetadata,
              o.createdAt,
              o.updatedAt,
              ...guard.args,
            ],
          },
          log({
            org: { sql: '?', args: [o.id] },
            entity: 'organization',
            entityId: o.id,
            op: 'upsert',
            version: o.updatedAt,
            data: { sql: "json_object('name', ?)", args: [o.name] },
            from: always,
          }),
        ];
      }
      const { id, at } = change;
      return [
        {
          sql: `INSERT INTO organizations (id, name, public_metadata, created_at, updated_at, deleted_at)
                SELECT ?, '', '{}', ?, ?, ? WHERE ${guard.sql}
                ON CONFLICT (id) DO UPDATE SET deleted_at = excluded.deleted_at,
                  updated_at = max(organizations.updated_at, excluded.updated_at)
                WHERE organizations.deleted_at IS NULL`,
          args: [id, at, at, at, ...guard.args],
        },
        log({
          org: { sql: '?', args: [id] },
          entity: 'organization',
          entityId: id,
          op: 'delete',
          version: at,
          data: noData,
          from: always,
        }),
        endMemberships('org_id', id, at, 'organizations'),
      ];
    }
    case 'membership': {
      const m = change.row;
      if (change.op === 'upsert') {
        return [
          // a re-join supersedes the pair's older live membership (one live row per pair)
          {
            sql: `UPDATE memberships SET deleted_at = ?, updated_at = ?
                  WHERE org_id = ? AND user_id = ? AND id != ? AND deleted_at IS NULL AND updated_at < ?
                    AND ${guard.sql}`,
            args: [m.updatedAt, m.updatedAt, m.orgId, m.userId, m.id, m.updatedAt, ...guard.args],
          },
          {
            sql: `INSERT INTO memberships (id, org_id, user_id, role, created_at, updated_at, deleted_at)
                  SELECT ?, ?, ?, ?, ?, ?,
                    CASE WHEN EXISTS (SELECT 1 FROM users WHERE id = ? AND deleted_at IS NOT NULL)
                           OR EXISTS (SELECT 1 FROM organizations WHERE id = ? AND deleted_at IS NOT NULL)
                           OR EXISTS (SELECT 1 FROM memberships WHERE org_id = ? AND user_id = ? AND id != ? AND deleted_at IS NULL)
                         THEN ? ELSE NULL END
                  WHERE ${guard.sql}
                  ON CONFLICT (id) DO UPDATE SET role = excluded.role, created_at = excluded.created_at,
                    updated_at = excluded.updated_at
                  WHERE excluded.updated_at > memberships.updated_at AND memberships.deleted_at IS NULL`,
            args: [
              m.id,
              m.orgId,
              m.userId,
              m.role,
              m.createdAt,
              m.updatedAt,
              m.userId,
              m.orgId,
              m.orgId,
              m.userId,
              m.id,
              m.updatedAt,
              ...guard.args,
            ],
          },
          log({
            org: { sql: 'org_id', args: [] },
            entity: 'membership',
            entityId: m.id,
            op: 'upsert',
            version: m.updatedAt,
            data: { sql: "json_object('userId', user_id, 'role', role)", args: [] },
            from: { sql: 'FROM memberships WHERE id = ? AND deleted_at IS NULL', args: [m.id] },
          }),
        ];
      }
      return [
        {
          sql: `INSERT INTO memberships (id, org_id, user_id, role, created_at, updated_at, deleted_at)
                SELECT ?, ?, ?, ?, ?, ?, ? WHERE ${guard.sql}
                ON CONFLICT (id) DO UPDATE SET deleted_at = excluded.deleted_at,
                  updated_at = max(memberships.updated_at, excluded.updated_at)
                WHERE memberships.deleted_at IS NULL`,
          args: [m.id, m.orgId, m.userId, m.role, m.createdAt, change.at, change.at, ...guard.args],
        },
        log({
          org: { sql: '?', args: [m.orgId] },
          entity: 'membership',
          entityId: m.id,
          op: 'delete',
          version: change.at,
          data: { sql: "json_object('userId', ?)", args: [m.userId] },
          from: always,
        }),
      ];
    }
  }
}

/**
 * Tombstones the live memberships of a user or org that this very batch just deleted
 * (its `deleted_at` equals this event's time), so authorization, which checks
 * memberships, stops at once.
 */
function endMemberships(
  column: 'user_id' | 'org_id',
  id: string,
  at: number,
  parent: 'users' | 'organizations',
): InStatement {
  return {
    sql: `UPDATE memberships SET deleted_at = ?, updated_at = max(updated_at, ?)
          WHERE ${column} = ? AND deleted_at IS NULL
            AND EXISTS (SELECT 1 FROM ${parent} WHERE id = ? AND deleted_at = ?)`,
    args: [at, at, id, id, at],
  };
}
