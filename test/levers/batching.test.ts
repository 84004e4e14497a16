import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS, startTestApp, type TestContext, withLevers } from '../support/harness.ts';
import { type Cast, castFrom } from '../support/people.ts';

// The batching lever through the real app: same answers, fewer round trips.
describe.each(BACKENDS)('batching lever on %s', (backend) => {
  let direct: TestContext;
  let batched: TestContext;
  let cast: Cast;
  let token: string;

  beforeAll(async () => {
    direct = await startTestApp(backend);
    batched = await startTestApp(backend, withLevers('batch'));
    cast = castFrom(direct.fixture);
    token = await direct.token({ userId: cast.adminA.id, orgId: cast.orgA.id, role: 'admin' });
  });
  afterAll(async () => {
    await direct?.close();
    await batched?.close();
  });

  const corpus = () => [
    `/api/orgs/${cast.orgA.id}/members?limit=50`,
    `/api/orgs/${cast.orgA.id}/members?limit=7`,
    `/api/orgs/${cast.orgA.id}`,
    `/api/orgs/${cast.orgB.id}/members`,
    '/api/me',
    `/api/users/${cast.memberA.id}`,
    `/api/users/${cast.strangerB.id}`,
  ];

  it('answers every request of the corpus exactly as without batching', async () => {
    for (const path of corpus()) {
      const [a, b] = await Promise.all([
        direct.call(path, { token }),
        batched.call(path, { token }),
      ]);
      expect(b.status, path).toBe(a.status);
      const strip = (text: string) => text.replace(/"requestId":"[^"]*"/, '');
      expect(strip(await b.text()), path).toBe(strip(await a.text()));
    }
  });

  it('a members page of 50 costs 2 round trips instead of 52', async () => {
    const before = batched.database.stats().roundTrips;
    const res = await batched.call(`/api/orgs/${cast.orgA.id}/members?limit=50`, { token });
    expect((await res.json()).data).toHaveLength(50);
    // the membership check, then the page joined with its 50 users
    expect(batched.database.stats().roundTrips - before).toBe(2);
  });

  it('with waitTime, concurrent requests share batches', async () => {
    const waiting = await startTestApp(backend, withLevers('batch', { batch: { waitTime: 10 } }));
    try {
      const before = waiting.database.stats().roundTrips;
      const results = await Promise.all(
        Array.from({ length: 5 }, () =>
          waiting.call(`/api/orgs/${cast.orgA.id}/members?limit=20`, { token }),
        ),
      );
      expect(results.map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);
      // unbatched: 5 x 22 = 110; same-tick batching only: 5 x 3 = 15; with the window the
      // five membership checks and the five user lookups share queries (ideally 1 + 5 + 1;
      // a little slack for a request that misses the window on a busy machine)
      expect(waiting.database.stats().roundTrips - before).toBeLessThanOrEqual(9);
    } finally {
      await waiting.close();
    }
  });
});
