import type { Row } from '@libsql/client';
import { and, asc, eq, gt, isNull, sql } from 'drizzle-orm';
import type { Db } from '../database.ts';
import { type ChangeRow, type Project, type ProjectStatus, projects } from '../schema.ts';
import { CHANGE_ROW_RETURNING, changeRowOf } from './changes.ts';
import type { Page } from './memberships.ts';

export function listProjects(
  db: Db,
  orgId: string,
  page: Page & { status?: ProjectStatus | undefined },
): Promise<Project[]> {
  return db
    .select()
    .from(projects)
    .where(
      and(
        eq(projects.orgId, orgId),
        isNull(projects.deletedAt),
        page.status === undefined ? undefined : eq(projects.status, page.status),
        page.after === undefined ? undefined : gt(projects.id, page.after),
      ),
    )
    .orderBy(asc(projects.id))
    .limit(page.limit + 1);
}

/** A live project of this organization; another org's project is simply not found. */
export async function getProject(db: Db, orgId: string, id: string): Promise<Project | null> {
  const rows = await db
    .select()
    .from(projects)
    .where(and(eq(projects.id, id), eq(projects.orgId, orgId), isNull(projects.deletedAt)))
    .limit(1);
  return rows[0] ?? null;
}

export interface NewProject {
  id: string;
  orgId: string;
  name: string;
  status: ProjectStatus;
  createdBy: string;
}

// Writes run as one `db.batch()`, a write transaction (BEGIN IMMEDIATE, see
// database.ts): the write and its change-log row commit together or not at all.

/**
 * Appends the project's change-log row if the statement just before changed it, and
 * returns it: the writer hands it to the publisher without reading the log.
 */
function logProjectChange(db: Db, id: string, op: 'upsert' | 'delete', write: WriteContext) {
  return db.all<Row>(sql`
    INSERT INTO change_log (org_id, entity, entity_id, op, version, data, trace_context, created_at)
    SELECT org_id, 'project', id, ${op}, version, json_object('name', name, 'status', status),
           ${write.traceContext}, ${write.now}
    FROM projects WHERE id = ${id} AND changes() > 0
    ${sql.raw(CHANGE_ROW_RETURNING)}`);
}

/** A write's row, and the change-log rows it appended (none when nothing changed). */
export interface Written<T> {
  row: T;
  changes: ChangeRow[];
}

/** When the write happens and which request caused it (W3C traceparent). */
export interface WriteContext {
  now: number;
  traceContext: string | null;
}

export async function insertProject(
  db: Db,
  input: NewProject,
  write: WriteContext,
): Promise<Written<Project>> {
  const [rows, log] = await db.batch([
    db
      .insert(projects)
      .values({
        id: input.id,
        orgId: input.orgId,
        name: input.name,
        status: input.status,
        createdBy: input.createdBy,
        version: 1,
        createdAt: write.now,
        updatedAt: write.now,
      })
      .returning(),
    logProjectChange(db, input.id, 'upsert', write),
  ]);
  return { row: rows[0]!, changes: log.map(changeRowOf) };
}

export interface ProjectPatch {
  name?: string | undefined;
  status?: ProjectStatus | undefined;
}

/** Applies the patch and bumps the version; `row` null when no live project of this org matches. */
export async function updateProject(
  db: Db,
  orgId: string,
  id: string,
  patch: ProjectPatch,
  write: WriteContext,
): Promise<Written<Project | null>> {
  const [rows, log] = await db.batch([
    db
      .update(projects)
      .set({
        ...(patch.name === undefined ? {} : { name: patch.name }),
        ...(patch.status === undefined ? {} : { status: patch.status }),
        version: sql`${projects.version} + 1`,
        updatedAt: write.now,
      })
      .where(and(eq(projects.id, id), eq(projects.orgId, orgId), isNull(projects.deletedAt)))
      .returning(),
    logProjectChange(db, id, 'upsert', write),
  ]);
  return { row: rows[0] ?? null, changes: log.map(changeRowOf) };
}

/** Tombstones the project; `row` null when no live project of this org matches. */
export async function deleteProject(
  db: Db,
  orgId: string,
  id: string,
  write: WriteContext,
): Promise<Written<Project | null>> {
  const [rows, log] = await db.batch([
    db
      .update(projects)
      .set({ deletedAt: write.now, updatedAt: write.now, version: sql`${projects.version} + 1` })
      .where(and(eq(projects.id, id), eq(projects.orgId, orgId), isNull(projects.deletedAt)))
      .returning(),
    logProjectChange(db, id, 'delete', write),
  ]);
  return { row: rows[0] ?? null, changes: log.map(changeRowOf) };
}
