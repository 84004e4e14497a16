import { type Context, Hono } from 'hono';
import { z } from 'zod';
import {
  deleteProject,
  getProject,
  insertProject,
  listProjects,
  updateProject,
  type WriteContext,
} from '../../db/queries/projects.ts';
import { type ChangeRow, projectStatuses } from '../../db/schema.ts';
import { newId } from '../../ids.ts';
import { requestHeader } from '../../request-headers.ts';
import { traceparentFor, traceparentOf } from '../../trace.ts';
import { type AppEnv, traceOf } from '../context.ts';
import { type Page, type ProjectView, projectDto } from '../dto.ts';
import { AppError } from '../errors.ts';
import { requireOrgAdmin } from '../middleware/auth.ts';
import type { RouteCache } from '../middleware/cache.ts';
import { json } from '../respond.ts';
import { cursorOf, encodeCursor, entityId, pageLimit, validate } from '../validation.ts';

const projectName = z.string().trim().min(1).max(120);
const listQuery = z.object({
  limit: pageLimit,
  cursor: cursorOf('p', 'proj').optional(),
  status: z.enum(projectStatuses).optional(),
});
const createBody = z.object({
  name: projectName,
  status: z.enum(projectStatuses).default('active'),
});
const patchBody = z
  .object({ name: projectName.optional(), status: z.enum(projectStatuses).optional() })
  .refine((patch) => patch.name !== undefined || patch.status !== undefined, {
    message: 'give at least one of name, status',
  });
const projectParam = z.object({ projectId: entityId('proj') });

const projectNotFound = () => new AppError(404, 'not_found', 'project not found');

/**
 * Mounted under `/api/orgs/:orgId/projects`, behind `requireOrgMember`. Every query
 * carries the org of the verified membership, never one from the body or query.
 */
export function projectRoutes(
  cached: RouteCache,
  onCommitted: (changes: readonly ChangeRow[]) => void | Promise<void>,
  now: () => number = Date.now,
) {
  const writeContext = (c: Context<AppEnv>): WriteContext => ({
    now: now(),
    traceContext: traceparentFor(traceOf(c).span, traceparentOf(requestHeader(c, 'traceparent'))),
  });
  return new Hono<AppEnv>()
    .get('/', cached('org', ['projects']), validate('query', listQuery), async (c) => {
      const { limit, cursor, status } = c.req.valid('query');
      const rows = await listProjects(c.get('db'), c.get('member').orgId, {
        after: cursor,
        limit,
        status,
      });
      const page = rows.slice(0, limit);
      const last = page.at(-1);
      return json(c, {
        data: page.map(projectDto),
        nextCursor: rows.length > limit && last ? encodeCursor('p', last.id) : null,
      } satisfies Page<ProjectView>);
    })
    .post('/', validate('json', createBody), async (c) => {
      const body = c.req.valid('json');
      const { row: project, changes } = await insertProject(
        c.get('db'),
        {
          id: newId('proj'),
          orgId: c.get('member').orgId,
          name: body.name,
          status: body.status,
          createdBy: c.get('session').userId,
        },
        writeContext(c),
      );
      await onCommitted(changes);
      return json(c, projectDto(project), 201);
    })
    .get('/:projectId', cached('org', ['projects']), validate('param', projectParam), async (c) => {
      const project = await getProject(
        c.get('db'),
        c.get('member').orgId,
        c.req.valid('param').projectId,
      );
      if (project === null) throw projectNotFound();
      return json(c, projectDto(project));
    })
    .patch(
      '/:projectId',
      validate('param', projectParam),
      validate('json', patchBody),
      async (c) => {
        const { projectId } = c.req.valid('param');
        const { row: project, changes } = await updateProject(
          c.get('db'),
          c.get('member').orgId,
          projectId,
          c.req.valid('json'),
          writeContext(c),
        );
        if (project === null) throw projectNotFound();
        await onCommitted(changes);
        return json(c, projectDto(project));
      },
    )
    .delete('/:projectId', requireOrgAdmin(), validate('param', projectParam), async (c) => {
      const { projectId } = c.req.valid('param');
      const { row: project, changes } = await deleteProject(
        c.get('db'),
        c.get('member').orgId,
        projectId,
        writeContext(c),
      );
      if (project === null) throw projectNotFound();
      await onCommitted(changes);
      return c.body(null, 204);
    });
}
