import type { Session } from '../auth/session.ts';
import type { SessionVerifier } from '../auth/verifier.ts';
import type { Loaders } from '../db/loaders.ts';
import type { Hub } from './hub.ts';
import { BEARER_PROTOCOL_PREFIX, PROTOCOL } from './protocol.ts';

/**
 * Everything checked BEFORE a WebSocket upgrade, runtime-neutral: the Origin
 * allowlist first (the server's own origin is always allowed: the client it serves;
 * cheap, and it stops cross-site pages before any token work), then
 * the session token (Authorization header, or a `bearer.<token>` subprotocol), an
 * active org with a live membership, and the per-user connection cap. Tokens are never
 * accepted in the query string, so they cannot end up in access logs or traces.
 */
export type UpgradeDecision =
  | { ok: true; session: Session & { orgId: string } }
  | { ok: false; status: 400 | 401 | 403 | 426 | 429; code: string; message: string };

export type UpgradeAuthorizer = (request: Request) => Promise<UpgradeDecision>;

export function createUpgradeAuthorizer(deps: {
  sessions: SessionVerifier;
  loaders: Loaders;
  allowedOrigins: readonly string[];
  hub: Pick<Hub, 'canConnect'>;
}): UpgradeAuthorizer {
  const origins = new Set(deps.allowedOrigins);
  return async (request) => {
    const origin = request.headers.get('origin');
    if (origin !== null && !origins.has(origin) && !sameOrigin(origin, request)) {
      return { ok: false, status: 403, code: 'forbidden_origin', message: 'origin not allowed' };
    }
    const protocols = (request.headers.get('sec-websocket-protocol') ?? '')
      .split(',')
      .map((p) => p.trim())
      .filter(Boolean);
    if (!protocols.includes(PROTOCOL)) {
      return {
        ok: false,
        status: 400,
        code: 'invalid_request',
        message: `subprotocol ${PROTOCOL} required`,
      };
    }
    const fromHeader = /^Bearer\s+(\S+)$/i.exec(request.headers.get('authorization') ?? '')?.[1];
    const fromProtocol = protocols
      .find((p) => p.startsWith(BEARER_PROTOCOL_PREFIX))
      ?.slice(BEARER_PROTOCOL_PREFIX.length);
    const token = fromHeader ?? fromProtocol;
    const unauthenticated = {
      ok: false,
      status: 401,
      code: 'unauthenticated',
      message: 'a valid session token is required',
    } as const;
    if (!token) return unauthenticated;
    let session: Session;
    try {
      session = await deps.sessions.verify(token);
    } catch {
      return unauthenticated;
    }
    if (session.orgId === null) {
      return {
        ok: false,
        status: 403,
        code: 'no_active_org',
        message: 'select an organization first',
      };
    }
    if ((await deps.loaders.membership(session.orgId, session.userId)) === null) {
      return {
        ok: false,
        status: 403,
        code: 'forbidden',
        message: 'not a member of this organization',
      };
    }
    if (!deps.hub.canConnect(session.userId)) {
      return {
        ok: false,
        status: 429,
        code: 'too_many_connections',
        message: 'connection limit reached',
      };
    }
    return { ok: true, session: { ...session, orgId: session.orgId } };
  };
}

/** A page of the server's own origin (the client it serves at `/app/`) may connect. */
function sameOrigin(origin: string, request: Request): boolean {
  try {
    return new URL(origin).host === request.headers.get('host');
  } catch {
    return false;
  }
}
