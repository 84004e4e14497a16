import { beforeAll, describe, expect, it } from 'vitest';
import { generateDevKeyPair, type KeyPairPem } from '../../fixtures/auth/keys.ts';
import { mintSessionToken } from '../../fixtures/auth/token.ts';
import { createSessionVerifier, SessionError } from './verifier.ts';

let keys: KeyPairPem;
beforeAll(() => {
  keys = generateDevKeyPair();
});

const mint = (opts: Partial<Parameters<typeof mintSessionToken>[0]> = {}) =>
  mintSessionToken({
    privateKeyPem: keys.privateKey,
    userId: 'user_abc',
    orgId: 'org_xyz',
    ...opts,
  });

describe('createSessionVerifier', () => {
  it('maps v2 claims to a session', async () => {
    const verifier = createSessionVerifier({ jwtKey: keys.publicKey, cache: false });
    const session = await verifier.verify(await mint({ role: 'admin', orgSlug: 'acme' }));
    expect(session).toMatchObject({
      userId: 'user_abc',
      orgId: 'org_xyz',
      orgRole: 'admin',
      orgSlug: 'acme',
    });
  });

  it('maps legacy org claims (org:admin) to the same session', async () => {
    const verifier = createSessionVerifier({ jwtKey: keys.publicKey, cache: false });
    const session = await verifier.verify(await mint({ role: 'admin', legacyOrgClaims: true }));
    expect(session.orgId).toBe('org_xyz');
    expect(session.orgRole).toBe('admin');
  });

  it('verifies a token once, then serves it from the cache', async () => {
    const verifier = createSessionVerifier({ jwtKey: keys.publicKey });
    const token = await mint();
    await verifier.verify(token);
    await verifier.verify(token);
    await verifier.verify(token);
    expect(verifier.stats()).toEqual({ cacheHits: 2, verifications: 1, rejections: 0 });
  });

  it('without the cache every request pays a full verification', async () => {
    const verifier = createSessionVerifier({ jwtKey: keys.publicKey, cache: false });
    const token = await mint();
    await verifier.verify(token);
    await verifier.verify(token);
    expect(verifier.stats()).toMatchObject({ cacheHits: 0, verifications: 2 });
  });

  it('a cached token stops working at exp (+ skew), by the injected clock', async () => {
    let now = Date.now();
    const verifier = createSessionVerifier({ jwtKey: keys.publicKey, now: () => now });
    const token = await mint({ ttlSeconds: 60 });
    await verifier.verify(token);
    now += 60_000 + 5_000 + 1;
    // falls through to a full verification, which Clerk rejects by the real clock only
    // once the token is really expired: here it is not, so it verifies again
    await verifier.verify(token);
    expect(verifier.stats()).toMatchObject({ cacheHits: 0, verifications: 2 });
  });

  it('never caches a rejected token', async () => {
    const verifier = createSessionVerifier({ jwtKey: keys.publicKey });
    const other = generateDevKeyPair();
    const forged = await mintSessionToken({ privateKeyPem: other.privateKey, userId: 'user_abc' });
    for (let i = 0; i < 2; i++) {
      await expect(verifier.verify(forged)).rejects.toBeInstanceOf(SessionError);
    }
    expect(verifier.stats()).toMatchObject({ cacheHits: 0, verifications: 2, rejections: 2 });
  });

  it('keeps the rejection reason for logs', async () => {
    const verifier = createSessionVerifier({ jwtKey: keys.publicKey, cache: false });
    const past = Math.floor(Date.now() / 1000) - 3600;
    const error = await verifier
      .verify(await mint({ issuedAt: past, ttlSeconds: 10 }))
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SessionError);
    expect((error as SessionError).reason).toBe('token-expired');
  });
});
