import type { MiddlewareHandler } from 'hono';
import type { AppEnv } from '../api/context.ts';
import { AppError } from '../api/errors.ts';
import { traced } from '../telemetry/spans.ts';
import type { SessionVerifier } from './verifier.ts';

/**
 * `Authorization: Bearer <Clerk session token>` -> `c.var.session`. Every failure is
 * the same 401 with no detail: the reason (expired, bad signature, wrong azp...) is
 * for our logs and metrics, not for the caller.
 */
export function requireSession(verifier: SessionVerifier): MiddlewareHandler<AppEnv> {
  return async function requireSession(c, next) {
    const token = bearerToken(c.req.header('authorization'));
    if (token === null) throw unauthenticated();
    try {
      c.set('session', await traced('auth', 'auth.session', () => verifier.verify(token)));
    } catch (error) {
      throw unauthenticated(error);
    }
    await next();
  };
}

/**
 * Org routes (`/api/orgs/:orgId/...`): the token's active org must be the org of the
 * path, AND the user must still be a member in the database, because a session token
 * outlives a membership removal. Another org's path is a 404, indistinguishable from
 * an org that does not exist.
 */
export function requireOrgMember(): MiddlewareHandler<AppEnv> {
  return async function requireOrgMember(c, next) {
    const session = c.var.session;
    const orgId = c.req.param('orgId');
    if (session.orgId === null) {
      throw new AppError(403, 'no_active_org', 'select an organization first');
    }
    if (orgId !== session.orgId) throw orgNotFound();
    const member = await traced('auth', 'auth.membership', () =>
      c.var.loaders.membership(orgId, session.userId),
    );
    if (member === null) throw orgNotFound();
    c.set('member', member);
    await next();
  };
}

/** Admin-only actions check the role stored in the database, not the token's claim. */
export function requireOrgAdmin(): MiddlewareHandler<AppEnv> {
  return async function requireOrgAdmin(c, next) {
    if (c.var.member.role !== 'admin') {
      throw new AppError(403, 'forbidden', 'this action needs the admin role');
    }
    await next();
  };
}

function bearerToken(header: string | undefined): string | null {
  if (header === undefined) return null;
  const match = /^Bearer\s+([A-Za-z0-9._~+/=-]+)$/i.exec(header.trim());
  return match?.[1] ?? null;
}

function unauthenticated(cause?: unknown): AppError {
  return new AppError(401, 'unauthenticated', 'a valid session token is required', {
    cause,
    headers: { 'WWW-Authenticate': 'Bearer' },
  });
}

const orgNotFound = () => new AppError(404, 'not_found', 'organization not found');
