import type { MiddlewareHandler } from 'hono';
import { bearerToken, checkOrgAccess, isOrgAdmin } from '../../auth/org-access.ts';
import type { SessionVerifier } from '../../auth/verifier.ts';
import { requestHeader } from '../../request-headers.ts';
import { traced } from '../../trace.ts';
import { type AppEnv, traceOf } from '../context.ts';
import { AppError } from '../errors.ts';

/**
 * `Authorization: Bearer <Clerk session token>` -> the `session` variable. Every failure is
 * the same 401 with no detail: the reason (expired, bad signature, wrong azp...) is
 * for our logs and metrics, not for the caller.
 */
export function requireSession(verifier: SessionVerifier): MiddlewareHandler<AppEnv> {
  return async function requireSession(c, next) {
    const token = bearerToken(requestHeader(c, 'authorization'));
    if (token === null) throw unauthenticated();
    try {
      c.set(
        'session',
        await traced(traceOf(c), 'auth', 'auth.session', () => verifier.verify(token)),
      );
    } catch (error) {
      throw unauthenticated(error);
    }
    await next();
  };
}

/**
 * Org routes (`/api/orgs/:orgId/...`): `checkOrgAccess` sets the `member` variable. Another
 * org's path, or an ended membership, is a 404, indistinguishable from an org that does
 * not exist.
 */
export function requireOrgMember(): MiddlewareHandler<AppEnv> {
  return async function requireOrgMember(c, next) {
    const access = await traced(traceOf(c), 'auth', 'auth.membership', () =>
      checkOrgAccess(c.get('session'), c.req.param('orgId') ?? '', c.get('loaders').membership),
    );
    if (!access.ok) {
      if (access.reason === 'no_active_org') {
        throw new AppError(403, 'no_active_org', 'select an organization first');
      }
      throw new AppError(404, 'not_found', 'organization not found');
    }
    c.set('member', access.member);
    await next();
  };
}

export function requireOrgAdmin(): MiddlewareHandler<AppEnv> {
  return async function requireOrgAdmin(c, next) {
    if (!isOrgAdmin(c.get('member'))) {
      throw new AppError(403, 'forbidden', 'this action needs the admin role');
    }
    await next();
  };
}

function unauthenticated(cause?: unknown): AppError {
  return new AppError(401, 'unauthenticated', 'a valid session token is required', {
    cause,
    headers: { 'WWW-Authenticate': 'Bearer' },
  });
}
