import type { Row } from '@libsql/client';
import { and, asc, eq, gt, lt, max, min, sql } from 'drizzle-orm';
import type { Db } from '../database.ts';
import { preparedPerDb } from '../prepared.ts';
import { type ChangeRow, changeLog } from '../schema.ts';

// the publisher reads after every commit: built once, executed with placeholders
const rowsAfter = preparedPerDb((db) =>
  db
    .select()
    .from(changeLog)
    .where(gt(changeLog.id, sql.placeholder('afterId')))
    .orderBy(asc(changeLog.id))
    .limit(sql.placeholder('limit'))
    .prepare(),
);

/** Change-log rows after `afterId`, in commit order (the publisher's read). */
export function changesAfter(db: Db, afterId: number, limit: number): Promise<ChangeRow[]> {
  return rowsAfter(db).all({ afterId, limit });
}

/**
 * `RETURNING` this from a change-log insert and read each row with `changeRowOf`: a
 * writer learns the rows its own commit appended without reading the log again.
 */
export const CHANGE_ROW_RETURNING =
  'RETURNING id, org_id, entity, entity_id, op, version, data, trace_context, created_at';

export function changeRowOf(row: Row): ChangeRow {
  return {
    id: Number(row.id),
    orgId: String(row.org_id),
    entity: String(row.entity) as ChangeRow['entity'],
    entityId: String(row.entity_id),
    op: String(row.op) as ChangeRow['op'],
    version: Number(row.version),
    data: String(row.data),
    traceContext: row.trace_context === null ? null : String(row.trace_context),
    createdAt: Number(row.created_at),
  };
}

/** One org's rows after `afterId`, in order (a WebSocket resume). */
export function orgChangesAfter(
  db: Db,
  orgId: string,
  afterId: number,
  limit: number,
): Promise<ChangeRow[]> {
  return db
    .select()
    .from(changeLog)
    .where(and(eq(changeLog.orgId, orgId), gt(changeLog.id, afterId)))
    .orderBy(asc(changeLog.id))
    .limit(limit);
}

export async function changeById(db: Db, id: number): Promise<ChangeRow | null> {
  const rows = await db.select().from(changeLog).where(eq(changeLog.id, id)).limit(1);
  return rows[0] ?? null;
}

/** Newest id overall, and oldest id still retained (0 when the log is empty). */
export async function changeLogBounds(db: Db): Promise<{ newest: number; oldest: number }> {
  const rows = await db
    .select({ newest: max(changeLog.id), oldest: min(changeLog.id) })
    .from(changeLog);
  return { newest: rows[0]?.newest ?? 0, oldest: rows[0]?.oldest ?? 0 };
}

export async function latestOrgChange(db: Db, orgId: string): Promise<number> {
  const rows = await db
    .select({ id: max(changeLog.id) })
    .from(changeLog)
    .where(eq(changeLog.orgId, orgId));
  return rows[0]?.id ?? 0;
}

export async function pruneChangeLog(db: Db, olderThan: number): Promise<number> {
  const result = await db.delete(changeLog).where(lt(changeLog.createdAt, olderThan));
  return result.rowsAffected;
}
