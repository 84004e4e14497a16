import { Hono } from 'hono';
import { z } from 'zod';
import { countMembers } from '../../db/queries/memberships.ts';
import type { AppEnv } from '../context.ts';
import { type MemberView, memberDto, type OrgDetail, orgDto, type Page } from '../dto.ts';
import { AppError } from '../errors.ts';
import type { RouteCache } from '../middleware/cache.ts';
import { json } from '../respond.ts';
import { cursorOf, encodeCursor, pageLimit, validate } from '../validation.ts';

const membersQuery = z.object({
  limit: pageLimit,
  cursor: cursorOf('m', 'orgmem').optional(),
});

/** Mounted under `/api/orgs/:orgId`, behind `requireOrgMember`. */
export function orgRoutes(cached: RouteCache) {
  return new Hono<AppEnv>()
    .get('/', cached('user', ['members']), async (c) => {
      // per user: the answer carries the caller's role; memberCount reads the members
      const member = c.get('member');
      const loaders = c.get('loaders');
      const [org, memberCount] = await Promise.all([
        loaders.org(member.orgId),
        countMembers(c.get('db'), member.orgId),
      ]);
      if (org === null) throw new AppError(404, 'not_found', 'organization not found');
      return json(c, { ...orgDto(org), memberCount, role: member.role } satisfies OrgDetail);
    })
    .get('/members', cached('org', ['members']), validate('query', membersQuery), async (c) => {
      const { limit, cursor } = c.req.valid('query');
      const member = c.get('member');
      const loaders = c.get('loaders');
      // N+1 queries without the batching lever, one joined read with it
      const { rows, users: people } = await loaders.membersPage(member.orgId, {
        after: cursor,
        limit,
      });
      const page = rows.slice(0, limit);
      const last = page.at(-1);
      return json(c, {
        data: page.map((m, i) => memberDto(m, people[i] ?? null)),
        nextCursor: rows.length > limit && last ? encodeCursor('m', last.id) : null,
      } satisfies Page<MemberView>);
    });
}
