import { Hono } from 'hono';
import { listUserMemberships } from '../../db/queries/memberships.ts';
import type { AppEnv } from '../context.ts';
import { type MeView, orgDto, userDto } from '../dto.ts';
import { json } from '../respond.ts';

/** `GET /api/me`: the caller's profile and organizations, as the database knows them. */
export function meRoutes() {
  return new Hono<AppEnv>().get('/', async (c) => {
    const session = c.get('session');
    const loaders = c.get('loaders');
    const [user, memberships] = await Promise.all([
      loaders.user(session.userId),
      listUserMemberships(c.get('db'), session.userId),
    ]);
    const orgs = await Promise.all(memberships.map((m) => loaders.org(m.orgId)));
    return json(c, {
      userId: session.userId,
      activeOrgId: session.orgId,
      user: user === null ? null : userDto(user),
      organizations: memberships.flatMap((membership, i) => {
        const org = orgs[i];
        return org ? [{ ...orgDto(org), role: membership.role }] : [];
      }),
    } satisfies MeView);
  });
}
