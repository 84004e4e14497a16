import { and, asc, eq, gt, isNull, sql } from 'drizzle-orm';
import type { Db } from '../database.ts';
import { type Project, type ProjectStatus, projects } from '../schema.ts';
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
  now: number;
}

// Writes run as one `db.batch()`, which is a write transaction (BEGIN IMMEDIATE, see
// database.ts): the change log rows of the sync issue join the same batch.

export async function insertProject(db: Db, input: NewProject): Promise<Project> {
  const [rows] = await db.batch([
    db
      .insert(projects)
      .values({
        id: input.id,
        orgId: input.orgId,
        name: input.name,
        status: input.status,
        createdBy: input.createdBy,
        version: 1,
        createdAt: input.now,
        updatedAt: input.now,
      })
      .returning(),
  ]);
  return rows[0]!;
}

export interface ProjectPatch {
  name?: string | undefined;
  status?: ProjectStatus | undefined;
}

/** Applies the patch and bumps the version; null when no live project of this org matches. */
export async function updateProject(
  db: Db,
  orgId: string,
  id: string,
  patch: ProjectPatch,
  now: number,
): Promise<Project | null> {
  const [rows] = await db.batch([
    db
      .update(projects)
      .set({
        ...(patch.name === undefined ? {} : { name: patch.name }),
        ...(patch.status === undefined ? {} : { status: patch.status }),
        version: sql`${projects.version} + 1`,
        updatedAt: now,
      })
      .where(and(eq(projects.id, id), eq(projects.orgId, orgId), isNull(projects.deletedAt)))
      .returning(),
  ]);
  return rows[0] ?? null;
}

/** Tombstones the project; null when no live project of this org matches. */
export async function deleteProject(
  db: Db,
  orgId: string,
  id: string,
  now: number,
): Promise<Project | null> {
  const [rows] = await db.batch([
    db
      .update(projects)
      .set({ deletedAt: now, updatedAt: now, version: sql`${projects.version} + 1` })
      .where(and(eq(projects.id, id), eq(projects.orgId, orgId), isNull(projects.deletedAt)))
      .returning(),
  ]);
  return rows[0] ?? null;
}
