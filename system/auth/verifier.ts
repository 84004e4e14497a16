import { verifyToken } from '@clerk/backend';
import { LRUCache } from 'lru-cache';
import { type Sha256Hex, webCryptoSha256 } from '../hash.ts';
import { type Session, sessionFromClaims } from './session.ts';

/**
 * Networkless Clerk session verification (`@clerk/backend` with the instance's PEM
 * public key), plus a verified-token cache. An RS256 verify costs far more than the
 * rest of a cached read, so a token seen before is trusted until its `exp` without
 * re-verifying: the cache is keyed by the SHA-256 of the whole token, so only the
 * exact bytes that verified once can hit it.
 */

export interface SessionVerifierConfig {
  /** SPKI PEM public key of the Clerk instance. */
  jwtKey: string;
  /** Accepted `azp` values (the app's origins). Empty: `azp` is not checked. */
  authorizedParties?: readonly string[];
  /** @default 5000, Clerk's default */
  clockSkewMs?: number;
  /** Verified-token cache; `false` verifies every request. @default { max: 10000 } */
  cache?: { max: number } | false;
  /** Injected clock (epoch ms). @default Date.now */
  now?: () => number;
  /** The token cache's key function. @default Web Crypto (Node passes `node:crypto`) */
  sha256?: Sha256Hex;
}

export const DEFAULT_CLOCK_SKEW_MS = 5000;
export const DEFAULT_TOKEN_CACHE_MAX = 10_000;

/** Why a token was refused; internal only, never sent to the caller. */
export class SessionError extends Error {
  override readonly name = 'SessionError';
  constructor(readonly reason: string) {
    super(`session token rejected: ${reason}`);
  }
}

export interface SessionVerifier {
  verify(token: string): Promise<Session>;
  /** Counters for telemetry: cache hits, full verifications, rejections. */
  stats(): { cacheHits: number; verifications: number; rejections: number };
}

export function createSessionVerifier(config: SessionVerifierConfig): SessionVerifier {
  const now = config.now ?? Date.now;
  const sha256 = config.sha256 ?? webCryptoSha256;
  const clockSkewMs = config.clockSkewMs ?? DEFAULT_CLOCK_SKEW_MS;
  const authorizedParties =
    config.authorizedParties && config.authorizedParties.length > 0
      ? [...config.authorizedParties]
      : undefined;
  const cacheOption = config.cache ?? { max: DEFAULT_TOKEN_CACHE_MAX };
  const cache = cacheOption === false ? null : new LRUCache<string, Session>(cacheOption);
  let cacheHits = 0;
  let verifications = 0;
  let rejections = 0;

  async function verifyFully(token: string): Promise<Session> {
    verifications += 1;
    try {
      const claims = await verifyToken(token, {
        jwtKey: config.jwtKey,
        authorizedParties,
        clockSkewInMs: clockSkewMs,
      });
      return sessionFromClaims(claims);
    } catch (error) {
      rejections += 1;
      const reason = (error as { reason?: unknown }).reason;
      throw new SessionError(typeof reason === 'string' ? reason : 'token-invalid');
    }
  }

  return {
    async verify(token) {
      if (cache === null) return verifyFully(token);
      const hashed = sha256(token);
      const key = typeof hashed === 'string' ? hashed : await hashed;
      const cached = cache.get(key);
      if (cached !== undefined) {
        // Expiry is checked against the injected clock on every hit, so a cached
        // token stops working at `exp` (+ skew) exactly like a verified one.
        if (cached.expiresAt + clockSkewMs > now()) {
          cacheHits += 1;
          return cached;
        }
        cache.delete(key);
      }
      const session = await verifyFully(token);
      cache.set(key, session);
      return session;
    },
    stats: () => ({ cacheHits, verifications, rejections }),
  };
}
