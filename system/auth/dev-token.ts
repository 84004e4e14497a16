import { importPKCS8, SignJWT } from 'jose';

/**
 * Development sessions: the dev key pair of `make setup` signs what Clerk would, so the
 * whole stack runs without a Clerk account. Used by the dev sign-in route (never mounted
 * in production), the fixtures, the tests and `npm run token`.
 *
 * Mints a Clerk-shaped session token (v2 claims): `sub`, `sid`, `azp`, `iss`, `iat`,
 * `nbf`, `exp`, `v: 2`, and the active organization as `o: { id, rol, slg }`.
 * `legacyOrgClaims` writes the older flat `org_id` / `org_role` / `org_slug` instead.
 */
export interface SessionTokenOptions {
  privateKeyPem: string;
  userId: string;
  orgId?: string | undefined;
  role?: 'admin' | 'member' | undefined;
  orgSlug?: string | undefined;
  /** @default 3600 */
  ttlSeconds?: number | undefined;
  /** @default 'http://localhost:5173' */
  azp?: string | undefined;
  /** Epoch seconds used as `iat`. @default now */
  issuedAt?: number | undefined;
  /** Seconds after `iat` before the token is valid. @default 0 */
  notBeforeOffset?: number | undefined;
  legacyOrgClaims?: boolean | undefined;
  sessionId?: string | undefined;
}

export const DEV_ISSUER = 'https://clerk.dev.localhost';
export const DEV_AZP = 'http://localhost:5173';
export const DEFAULT_TOKEN_TTL_SECONDS = 3600;

const keyCache = new Map<string, Promise<CryptoKey>>();

export async function mintSessionToken(options: SessionTokenOptions): Promise<string> {
  const iat = options.issuedAt ?? Math.floor(Date.now() / 1000);
  const ttl = options.ttlSeconds ?? DEFAULT_TOKEN_TTL_SECONDS;
  const role = options.role ?? 'member';
  const claims: Record<string, unknown> = {
    azp: options.azp ?? DEV_AZP,
    sid: options.sessionId ?? `sess_${options.userId.slice(5)}`,
    v: 2,
  };
  if (options.orgId !== undefined) {
    const slug = options.orgSlug ?? options.orgId.toLowerCase();
    if (options.legacyOrgClaims) {
      Object.assign(claims, { org_id: options.orgId, org_role: `org:${role}`, org_slug: slug });
    } else {
      claims.o = { id: options.orgId, rol: role, slg: slug };
    }
  }
  let key = keyCache.get(options.privateKeyPem);
  if (key === undefined) {
    key = importPKCS8(options.privateKeyPem, 'RS256');
    keyCache.set(options.privateKeyPem, key);
  }
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid: 'ins_dev' })
    .setSubject(options.userId)
    .setIssuer(DEV_ISSUER)
    .setIssuedAt(iat)
    .setNotBefore(iat + (options.notBeforeOffset ?? 0))
    .setExpirationTime(iat + ttl)
    .sign(await key);
}
