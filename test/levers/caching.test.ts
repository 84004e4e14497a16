import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { userEvent } from '../../fixtures/clerk/events.ts';
import { generateFixture } from '../../fixtures/seed/generate.ts';
import { loadFixture } from '../../fixtures/seed/load.ts';
import { type RedisServer, startRedis } from '../../load/infra/redis.ts';
import { signedHeaders } from '../../load/webhook-sender.ts';
import { startTestApp, type TestContext, withLevers } from '../support/harness.ts';
import { type Cast, castFrom } from '../support/people.ts';
import { startTestServer, type TestServer } from '../support/server.ts';

const fixture = generateFixture('small');
const cast: Cast = castFrom(fixture);

/** A real server with the given levers, seeded, and helpers to read and write as org A's admin. */
async function serverWith(env: Record<string, string>) {
  // no background poll: the round trips counted are the test's own requests
  const server = await startTestServer({ CHANGE_POLL_MS: '600000', ...env });
  await loadFixture(server.database, fixture);
  const token = await server.token({ userId: cast.adminA.id, orgId: cast.orgA.id, role: 'admin' });
  const get = (path: string, t = token) =>
    fetch(`${server.url}${path}`, { headers: { authorization: `Bearer ${t}` } });
  const members = `/api/orgs/${cast.orgA.id}/members?limit=100`;
  const projects = `/api/orgs/${cast.orgA.id}/projects`;
  const createProject = async (name: string) => {
    const res = await fetch(`${server.url}${projects}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name }),
    });
    expect(res.status).toBe(201);
  };
  const renameMember = async (firstName: string) => {
    const body = JSON.stringify(
      userEvent('user.updated', { ...cast.memberA, firstName, updatedAt: Date.now() }, Date.now()),
    );
    const res = await fetch(`${server.url}/webhooks/clerk`, {
      method: 'POST',
      headers: signedHeaders(server.webhookSecret, `msg_${firstName}_${Date.now()}`, body),
      body,
    });
    expect(((await res.json()) as { status: string }).status).toBe('applied');
  };
  return { server, token, get, members, projects, createProject, renameMember };
}

describe.each([
  ['cache-memory', 'precise'],
  ['cache-memory', 'group'],
  ['recommended', 'precise'],
])('caching lever: %s, %s invalidation', (preset, invalidation) => {
  let s: Awaited<ReturnType<typeof serverWith>>;
  beforeAll(async () => {
    s = await serverWith({ DATAFLOW_PRESET: preset, DATAFLOW_CACHE_INVALIDATION: invalidation });
  });
  afterAll(() => (s.server as TestServer & { cleanup(): Promise<void> }).cleanup());

  it('serves a repeated read from the cache without touching the database', async () => {
    expect((await s.get(s.members)).headers.get('x-cache')).toBe('miss');
    const before = s.server.database.stats().roundTrips;
    const hit = await s.get(s.members);
    expect(hit.headers.get('x-cache')).toBe('hit');
    expect((await hit.json()).data.length).toBeGreaterThan(10);
    // the membership check is cached too (invalidated by the change log)
    expect(s.server.database.stats().roundTrips - before).toBe(0);
  });

  it('zero stale reads: the next read after a project write sees it', async () => {
    await s.get(s.projects);
    for (const name of ['fresh-1', 'fresh-2', 'fresh-3']) {
      await s.createProject(name);
      const names = (await (await s.get(s.projects)).json()).data.map(
        (p: { name: string }) => p.name,
      );
      expect(names).toContain(name);
    }
  });

  it('zero stale reads: the next read after a webhook commits sees it', async () => {
    await s.get(s.members);
    for (const name of ['Renamed1', 'Renamed2']) {
      await s.renameMember(name);
      const body = await (await s.get(s.members)).json();
      const member = body.data.find(
        (m: { user: { id: string } | null }) => m.user?.id === cast.memberA.id,
      );
      expect(member.user.firstName).toBe(name);
    }
  });

  it('keys are scoped: another org and another user never get these entries', async () => {
    await s.get(`/api/orgs/${cast.orgA.id}`);
    const member = await s.server.token({ userId: cast.memberA.id, orgId: cast.orgA.id });
    const asMember = await (await s.get(`/api/orgs/${cast.orgA.id}`, member)).json();
    expect(asMember.role).toBe('member'); // the admin's cached answer says admin
    const stranger = await s.server.token({ userId: cast.strangerB.id, orgId: cast.orgB.id });
    const other = await s.get(`/api/orgs/${cast.orgB.id}/members?limit=100`, stranger);
    const ids = (await other.json()).data.map((m: { user: { id: string } | null }) => m.user?.id);
    expect(ids).toContain(cast.strangerB.id);
    expect(ids).not.toContain(cast.adminA.id);
  });
});

describe('response cache in-process', () => {
  let t: TestContext;
  const memory = { cache: { level: 'memory', ttl: 60_000 } } as const;
  beforeAll(async () => {
    t = await startTestApp('file', withLevers('cache-memory', memory));
  });
  afterAll(() => t?.close());

  it('1,000 concurrent misses of a hot key cost one page load', async () => {
    const token = await t.token({ userId: cast.adminA.id, orgId: cast.orgA.id, role: 'admin' });
    await t.call('/api/me', { token });
    const before = t.database.stats().roundTrips;
    const all = await Promise.all(
      Array.from({ length: 1000 }, () =>
        t.call(`/api/orgs/${t.fixture.organizations[0]!.id}/members?limit=20`, { token }),
      ),
    );
    const statuses = new Set(all.map((r) => r.status));
    const trips = t.database.stats().roundTrips - before;
    // 1,000 membership checks (unbatched here) + one page query + 20 user lookups
    expect(statuses.size).toBe(1);
    expect(trips).toBeLessThanOrEqual(1000 + 1 + 20);
  });

  it('stale-if-error: after the TTL, a failing database gets the last value, marked stale', async () => {
    let clock = Date.now();
    const app = await startTestApp(
      'file',
      withLevers(
        'cache-memory',
        { cache: { level: 'memory', ttl: 1000, staleIfErrorMs: 60_000 } },
        { cacheHooks: { now: () => clock } },
      ),
    );
    try {
      const token = await app.token({ userId: cast.adminA.id, orgId: cast.orgA.id, role: 'admin' });
      const path = `/api/orgs/${cast.orgA.id}/members?limit=5`;
      const fresh = await (await app.call(path, { token })).text();
      clock += 5000; // past the TTL
      // the user lookups of the page fail; the membership check still works
      await app.database.client.execute('ALTER TABLE users RENAME TO users_gone');
      const res = await app.call(path, { token });
      expect(res.status).toBe(200);
      expect(res.headers.get('x-cache')).toBe('stale');
      expect(res.headers.get('warning')).toContain('110');
      expect(await res.text()).toBe(fresh);
      clock += 120_000; // past the stale-if-error grace: the error shows
      expect((await app.call(path, { token })).status).toBe(500);
      await app.database.client.execute('ALTER TABLE users_gone RENAME TO users');
      expect((await app.call(path, { token })).headers.get('x-cache')).toBe('miss');
    } finally {
      await app.close();
    }
  });

  it('a failing load: every waiter gets the error once, nothing is cached', async () => {
    // sqld: real I/O, so the 50 requests are in flight together (an embedded database
    // finishes each load before the next request is past authentication)
    const app = await startTestApp('sqld', withLevers('cache-memory', memory));
    try {
      const token = await app.token({ userId: cast.adminA.id, orgId: cast.orgA.id, role: 'admin' });
      await app.call('/api/me', { token });
      await app.database.client.execute('ALTER TABLE users RENAME TO users_gone');
      const before = app.database.stats().roundTrips;
      const path = `/api/orgs/${cast.orgA.id}/members?limit=5`;
      const all = await Promise.all(Array.from({ length: 50 }, () => app.call(path, { token })));
      const trips = app.database.stats().roundTrips - before;
      expect(new Set(all.map((r) => r.status))).toEqual(new Set([500]));
      // 50 membership checks + one page query + the failing lookups: one per wave of
      // requests that reach the cache while no load is in flight (the driver runs at most
      // 20 queries at once, so the membership checks finish in waves, and a failed load
      // is not cached). Without sharing it would be 50 loads; at most 10 says each load
      // was shared by five or more waiters.
      expect(trips).toBeLessThanOrEqual(50 + 1 + 10);
      await app.database.client.execute('ALTER TABLE users_gone RENAME TO users');
      const after = await app.call(path, { token });
      expect(after.status).toBe(200);
      expect(after.headers.get('x-cache')).toBe('miss');
    } finally {
      await app.close();
    }
  });

  it('edge level: ETag and 304 on a repeated GET', async () => {
    const edge = await startTestApp(
      'memory',
      withLevers('cache-memory', { cache: { level: 'edge' } }),
    );
    try {
      const token = await edge.token({
        userId: cast.adminA.id,
        orgId: cast.orgA.id,
        role: 'admin',
      });
      const path = `/api/orgs/${cast.orgA.id}/members`;
      const first = await edge.call(path, { token });
      const etag = first.headers.get('etag');
      expect(etag).toMatch(/^"[0-9a-f]{24}"$/);
      expect(first.headers.get('cache-control')).toBe('private, no-cache');
      const second = await edge.call(path, { token, headers: { 'if-none-match': etag! } });
      expect(second.status).toBe(304);
      expect(await second.text()).toBe('');
      const other = await edge.call(`${path}?limit=3`, {
        token,
        headers: { 'if-none-match': etag! },
      });
      expect(other.status).toBe(200);
    } finally {
      await edge.close();
    }
  });
});

describe('cache-redis: shared by processes, Redis down falls back to the database', () => {
  let redis: RedisServer;
  let s: Awaited<ReturnType<typeof serverWith>>;
  beforeAll(async () => {
    redis = await startRedis();
    s = await serverWith({ DATAFLOW_PRESET: 'cache-redis', REDIS_URL: redis.url });
  });
  afterAll(async () => {
    await (s.server as TestServer & { cleanup(): Promise<void> }).cleanup();
    await redis.stop();
  });

  it('hits from Redis, stays fresh after writes, and survives Redis being killed', async () => {
    expect((await s.get(s.projects)).headers.get('x-cache')).toBe('miss');
    expect((await s.get(s.projects)).headers.get('x-cache')).toBe('hit');
    await s.createProject('in-redis');
    const names = (await (await s.get(s.projects)).json()).data.map(
      (p: { name: string }) => p.name,
    );
    expect(names).toContain('in-redis');
    await redis.stop();
    for (let i = 0; i < 5; i++) {
      const res = await s.get(s.projects);
      expect(res.status).toBe(200);
      expect(res.headers.get('x-cache')).toBe('miss');
    }
    await s.createProject('while-redis-down');
    const after = (await (await s.get(s.projects)).json()).data.map(
      (p: { name: string }) => p.name,
    );
    expect(after).toContain('while-redis-down');
  });
});
