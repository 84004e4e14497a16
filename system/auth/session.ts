import type { verifyToken } from '@clerk/backend';
import { normalizeRole, type OrgRole } from './roles.ts';

/** Who is calling, as asserted by a verified Clerk session token. */
export interface Session {
  readonly userId: string;
  readonly sessionId: string | null;
  /** The active organization, or null when the user has none selected. */
  readonly orgId: string | null;
  /** Role claimed by the token; org routes re-check it against the database. */
  readonly orgRole: OrgRole | null;
  readonly orgSlug: string | null;
  /** Token expiry, epoch milliseconds. */
  readonly expiresAt: number;
}

/** The verified claims as `@clerk/backend` returns them. */
export type JwtPayload = Awaited<ReturnType<typeof verifyToken>>;

interface OrgClaimV2 {
  id?: unknown;
  rol?: unknown;
  slg?: unknown;
}

/** Reads both the v2 `o` claim and the older flat `org_id` / `org_role` / `org_slug`. */
export function sessionFromClaims(claims: JwtPayload): Session {
  const raw = claims as JwtPayload & Record<string, unknown>;
  const o = (typeof raw.o === 'object' && raw.o !== null ? raw.o : {}) as OrgClaimV2;
  const orgId = stringOrNull(o.id) ?? stringOrNull(raw.org_id);
  return {
    userId: claims.sub,
    sessionId: stringOrNull(raw.sid),
    orgId,
    orgRole: orgId === null ? null : normalizeRole(o.rol ?? raw.org_role),
    orgSlug: orgId === null ? null : (stringOrNull(o.slg) ?? stringOrNull(raw.org_slug)),
    expiresAt: claims.exp * 1000,
  };
}

function stringOrNull(value: unknown): string | null {
  return typeof value === 'string' && value.length > 0 ? value : null;
}
