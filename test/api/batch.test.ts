import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKENDS, startTestApp, type TestContext } from '../support/harness.ts';
import { type Cast, castFrom } from '../support/people.ts';
import { startWorkerTestApp } from '../support/worker.ts';

describe.each([...BACKENDS, 'workerd'] as const)('POST /api/batch on %s', (backend) => {
  let t: TestContext;
  let cast: Cast;
  let token: string;
  beforeAll(async () => {
    t = backend === 'workerd' ? await startWorkerTestApp() : await startTestApp(backend);
    cast = castFrom(t.fixture);
    token = await t.token({ userId: cast.adminA.id, orgId: cast.orgA.id, role: 'admin' });
  });
  afterAll(() => t?.close());

  const batch = (requests: unknown) =>
    t.call('/api/batch', { token, method: 'POST', json: { requests } });
  const get = (id: string, path: string) => ({ id, method: 'GET', path });

  it('answers each item exactly as a direct call would', async () => {
    const paths = [
      `/api/orgs/${cast.orgA.id}/members?limit=5`,
      `/api/orgs/${cast.orgA.id}`,
      '/api/me',
    ];
    const res = await batch(paths.map((p, i) => get(`i${i}`, p)));
    expect(res.status).toBe(200);
    const { responses } = await res.json();
    for (const [i, path] of paths.entries()) {
      const direct = await t.call(path, { token });
      expect(responses[i]).toEqual({
        id: `i${i}`,
        status: direct.status,
        body: await direct.json(),
      });
    }
  });

  it('scopes every item like a direct call: another org is a 404 for that item only', async () => {
    const res = await batch([
      get('mine', `/api/orgs/${cast.orgA.id}`),
      get('theirs', `/api/orgs/${cast.orgB.id}/members`),
    ]);
    expect(res.status).toBe(200);
    const text = await res.text();
    const { responses } = JSON.parse(text);
    expect(responses.map((r: { status: number }) => r.status)).toEqual([200, 404]);
    expect(text).not.toContain(cast.strangerB.id);
  });

  it('identical items cost one read', async () => {
    const path = `/api/orgs/${cast.orgA.id}/members?limit=10`;
    await t.call('/api/me', { token }); // token already verified
    const before = t.database.stats().roundTrips;
    const res = await batch(Array.from({ length: 5 }, (_, i) => get(`same${i}`, path)));
    const { responses } = await res.json();
    expect(new Set(responses.map((r: { body: unknown }) => JSON.stringify(r.body))).size).toBe(1);
    expect(t.database.stats().roundTrips - before).toBe(2 + 10); // one direct members call
  });

  it('refuses empty, oversized, nested, escaping, non-GET and duplicate-id batches', async () => {
    const cases: Array<[unknown, number, RegExp]> = [
      [[], 400, /at least one item/],
      [Array.from({ length: 21 }, (_, i) => get(`x${i}`, '/api/me')), 413, /at most 20 items/],
      [[get('n', '/api/batch')], 400, /nested batch/],
      [[get('e', '/api/../health')], 400, /path not allowed/],
      [[{ id: 'p', method: 'POST', path: '/api/me' }], 400, /only GET/],
      [[get('d', '/api/me'), get('d', '/api/me')], 400, /duplicate item id "d"/],
    ];
    for (const [requests, status, message] of cases) {
      const res = await batch(requests);
      expect(res.status, JSON.stringify(requests).slice(0, 60)).toBe(status);
      expect((await res.json()).error.message).toMatch(message);
    }
  });

  it('needs a session like any /api route', async () => {
    const res = await t.call('/api/batch', {
      method: 'POST',
      json: { requests: [get('a', '/api/me')] },
    });
    expect(res.status).toBe(401);
  });
});
