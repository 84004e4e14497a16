import type { Loaders } from '../db/loaders.ts';
import type { Membership } from '../db/schema.ts';
import type { Session } from './session.ts';

/**
 * Org scoping, framework-free: the token's active org must be the org asked for, AND
 * the user must still be a member in the database, because a session token outlives a
 * membership removal. The HTTP adapter (`api/middleware/auth.ts`) answers another org,
 * or an ended membership, exactly like an org that does not exist.
 */
export type OrgAccess =
  | { ok: true; member: Membership }
  | { ok: false; reason: 'no_active_org' | 'not_member' };

export async function checkOrgAccess(
  session: Session,
  orgId: string,
  membership: Loaders['membership'],
): Promise<OrgAccess> {
  if (session.orgId === null) return { ok: false, reason: 'no_active_org' };
  if (orgId !== session.orgId) return { ok: false, reason: 'not_member' };
  const member = await membership(orgId, session.userId);
  return member === null ? { ok: false, reason: 'not_member' } : { ok: true, member };
}

/** Admin-only actions check the role stored in the database, not the token's claim. */
export const isOrgAdmin = (member: Membership): boolean => member.role === 'admin';

/** `Bearer <token>` -> the token; null when absent or malformed. */
export function bearerToken(header: string | null | undefined): string | null {
  if (header === undefined || header === null) return null;
  const match = /^Bearer\s+([A-Za-z0-9._~+/=-]+)$/i.exec(header.trim());
  return match?.[1] ?? null;
}
