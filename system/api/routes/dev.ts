import { asc, eq } from 'drizzle-orm';
import { Hono } from 'hono';
import { z } from 'zod';
import { DEFAULT_TOKEN_TTL_SECONDS, mintSessionToken } from '../../auth/dev-token.ts';
import type { Db } from '../../db/database.ts';
import { getMembership, listUserMemberships } from '../../db/queries/memberships.ts';
import { memberships, organizations, users } from '../../db/schema.ts';
import type { AppEnv } from '../context.ts';
import { AppError } from '../errors.ts';
import { json } from '../respond.ts';
import { entityId, validate } from '../validation.ts';

/** Who the development sign-in offers (the first users of the seed, with their orgs). */
export interface DevUser {
  id: string;
  name: string;
  organizations: Array<{ id: string; name: string; role: string }>;
}

const SIGN_IN_USERS = 25;

const sessionBody = z.object({ userId: entityId('user'), orgId: entityId('org').optional() });

/**
 * The development sign-in (`/dev/*`): what Clerk's hosted sign-in does in production,
 * with the dev key pair of `make setup`. The Node entry mounts it only outside production
 * and only when the dev private key exists; in production `/dev/*` is a 404 (a test
 * proves it). The token is the one Clerk would mint: the role comes from the database.
 *
 *   GET  /dev/users                         -> { users: DevUser[] }
 *   POST /dev/session { userId, orgId? }    -> { token, expiresAt }  (orgId: the active org)
 */
export function devRoutes(db: Db, privateKeyPem: string) {
  return new Hono<AppEnv>()
    .get('/users', async (c) => {
      const rows = await db
        .select({
          userId: users.id,
          firstName: users.firstName,
          lastName: users.lastName,
          email: users.email,
          orgId: organizations.id,
          orgName: organizations.name,
          role: memberships.role,
        })
        .from(users)
        .innerJoin(memberships, eq(memberships.userId, users.id))
        .innerJoin(organizations, eq(organizations.id, memberships.orgId))
        .orderBy(asc(users.id), asc(organizations.id))
        .limit(SIGN_IN_USERS * 4);
      const byUser = new Map<string, DevUser>();
      for (const row of rows) {
        let user = byUser.get(row.userId);
        if (!user) {
          if (byUser.size === SIGN_IN_USERS) break;
          const name = [row.firstName, row.lastName].filter(Boolean).join(' ');
          user = { id: row.userId, name: name || row.email || row.userId, organizations: [] };
          byUser.set(row.userId, user);
        }
        user.organizations.push({ id: row.orgId, name: row.orgName, role: row.role });
      }
      return json(c, { users: [...byUser.values()] });
    })
    .post('/session', validate('json', sessionBody), async (c) => {
      const { userId, orgId } = c.req.valid('json');
      let role: 'admin' | 'member' | undefined;
      if (orgId !== undefined) {
        const membership = await getMembership(db, orgId, userId);
        if (membership === null) {
          throw new AppError(403, 'forbidden', `${userId} is not a member of ${orgId}`);
        }
        role = membership.role === 'admin' ? 'admin' : 'member';
      } else if ((await listUserMemberships(db, userId)).length === 0) {
        throw new AppError(404, 'not_found', `no user ${userId} with an organization`);
      }
      const issuedAt = Math.floor(Date.now() / 1000);
      const token = await mintSessionToken({ privateKeyPem, userId, orgId, role, issuedAt });
      return json(c, { token, expiresAt: (issuedAt + DEFAULT_TOKEN_TTL_SECONDS) * 1000 });
    });
}
