import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS, startTestApp, type TestContext, withLevers } from '../support/harness.ts';
import { type Cast, castFrom } from '../support/people.ts';

// The coalescing lever through the real app and database.
describe.each(BACKENDS)('coalescing lever on %s', (backend) => {
  let coalesced: TestContext;
  let both: TestContext;
  let cast: Cast;

  beforeAll(async () => {
    // An embedded database answers the leader before the other 199 requests are past
    // authentication (an async digest each), so the burst is held together by a window.
    const window = { coalesce: { window: 2000 } };
    coalesced = await startTestApp(backend, withLevers('coalesce', window));
    both = await startTestApp(
      backend,
      withLevers('recommended', { ...window, cache: { enabled: false } }),
    );
    cast = castFrom(coalesced.fixture);
  });
  afterAll(async () => {
    await coalesced?.close();
    await both?.close();
  });

  const burst = async (t: TestContext, n: number) => {
    const token = await t.token({ userId: cast.adminA.id, orgId: cast.orgA.id, role: 'admin' });
    await t.call('/api/me', { token }); // token verified and cached: the burst measures the read
    const before = t.database.stats().roundTrips;
    const responses = await Promise.all(
      Array.from({ length: n }, () =>
        t.call(`/api/orgs/${cast.orgA.id}/members?limit=50`, { token }),
      ),
    );
    const bodies = new Set(await Promise.all(responses.map((r) => r.text())));
    return {
      statuses: new Set(responses.map((r) => r.status)),
      bodies,
      roundTrips: t.database.stats().roundTrips - before,
    };
  };

  it('a cold burst of 200 identical requests runs once (52 round trips instead of 10,400)', async () => {
    const { statuses, bodies, roundTrips } = await burst(coalesced, 200);
    expect(statuses).toEqual(new Set([200]));
    expect(bodies.size).toBe(1);
    expect(roundTrips).toBe(52);
  });

  it('with batching too, the burst costs 2 round trips', async () => {
    const { statuses, roundTrips } = await burst(both, 200);
    expect(statuses).toEqual(new Set([200]));
    expect(roundTrips).toBe(2);
  });

  it('two orgs and two users on identical paths, concurrently, never see each other’s data', async () => {
    const tokens = await Promise.all([
      coalesced.token({ userId: cast.adminA.id, orgId: cast.orgA.id, role: 'admin' }),
      coalesced.token({ userId: cast.memberA.id, orgId: cast.orgA.id }),
      coalesced.token({ userId: cast.strangerB.id, orgId: cast.orgB.id }),
    ]);
    const me = await Promise.all(
      Array.from({ length: 30 }, (_, i) => coalesced.call('/api/me', { token: tokens[i % 3] })),
    );
    const ids = await Promise.all(me.map(async (r) => (await r.json()).userId));
    expect(ids).toEqual(
      Array.from(
        { length: 30 },
        (_, i) => [cast.adminA.id, cast.memberA.id, cast.strangerB.id][i % 3],
      ),
    );
    // same org path, different members: the role in the answer is each caller's own
    const org = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        coalesced.call(`/api/orgs/${cast.orgA.id}`, { token: tokens[i % 2] }),
      ),
    );
    const roles = await Promise.all(org.map(async (r) => (await r.json()).role));
    expect(roles).toEqual(Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? 'admin' : 'member')));
    // org B's path with org A's token stays a 404 even while B's member reads it
    const mixed = await Promise.all([
      coalesced.call(`/api/orgs/${cast.orgB.id}/members`, { token: tokens[2] }),
      coalesced.call(`/api/orgs/${cast.orgB.id}/members`, { token: tokens[0] }),
    ]);
    expect(mixed.map((r) => r.status)).toEqual([200, 404]);
  });
});

// A follower's answer is the leader's body with the follower's own per-request headers.
// Through `app.request` (the path Workers take) the early headers live in Hono's context,
// so a copy of the leader's headers would carry the leader's CORS answer and request id.
describe.each(BACKENDS)('a coalesced answer on %s', (backend) => {
  let t: TestContext;
  let cast: Cast;
  const allowed = 'http://localhost:5173';

  beforeAll(async () => {
    t = await startTestApp(backend, withLevers('coalesce', { coalesce: { window: 5000 } }));
    cast = castFrom(t.fixture);
  });
  afterAll(async () => {
    await t?.close();
  });

  const pair = async (limit: number, leaderOrigin?: string, followerOrigin?: string) => {
    const token = await t.token({ userId: cast.adminA.id, orgId: cast.orgA.id, role: 'admin' });
    const ask = (origin: string | undefined, id: string) =>
      t.call(`/api/orgs/${cast.orgA.id}/members?limit=${limit}`, {
        token,
        headers: { 'x-request-id': id, ...(origin ? { origin } : {}) },
      });
    const leader = await ask(leaderOrigin, `leader-${limit}`);
    const follower = await ask(followerOrigin, `follower-${limit}`);
    expect(leader.headers.get('x-coalesced')).toBeNull();
    expect(follower.headers.get('x-coalesced')).toBe('follower');
    expect(await follower.text()).toBe(await leader.text());
    return { leader, follower };
  };

  it('carries the follower’s request id and no CORS grant made to the leader’s origin', async () => {
    const { leader, follower } = await pair(11, allowed, undefined);
    expect(leader.headers.get('access-control-allow-origin')).toBe(allowed);
    expect(follower.headers.get('x-request-id')).toBe('follower-11');
    expect(follower.headers.get('access-control-allow-origin')).toBeNull();
    expect(follower.headers.get('access-control-expose-headers')).toBeNull();
  });

  it('grants CORS to the follower’s own allowed origin, with each header once', async () => {
    const { leader, follower } = await pair(12, undefined, allowed);
    expect(leader.headers.get('access-control-allow-origin')).toBeNull();
    expect(follower.headers.get('access-control-allow-origin')).toBe(allowed);
    expect(follower.headers.get('vary')).toBe('Origin');
    expect(follower.headers.get('x-content-type-options')).toBe('nosniff');
    expect(follower.headers.get('content-type')).toMatch(/^application\/json/);
  });
});
