import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateFixture } from '../../fixtures/seed/generate.ts';
import { loadFixture } from '../../fixtures/seed/load.ts';
import { startTestApp, withLevers } from '../support/harness.ts';
import { castFrom } from '../support/people.ts';
import { startTestServer } from '../support/server.ts';

const fixture = generateFixture('small');
const cast = castFrom(fixture);
const SECURITY = {
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'origin-agent-cluster': '?1',
  'referrer-policy': 'no-referrer',
  'strict-transport-security': 'max-age=15552000; includeSubDomains',
  'x-content-type-options': 'nosniff',
  'x-dns-prefetch-control': 'off',
  'x-download-options': 'noopen',
  'x-frame-options': 'SAMEORIGIN',
  'x-permitted-cross-domain-policies': 'none',
  'x-xss-protection': '0',
};
const UUID = /^[\da-f]{8}-[\da-f]{4}-[\da-f]{4}-[\da-f]{4}-[\da-f]{12}$/;

const expectSecure = (res: Response) => {
  for (const [name, value] of Object.entries(SECURITY)) {
    expect(res.headers.get(name), name).toBe(value);
  }
  expect(res.headers.get('vary')).toBe('Origin');
};

/**
 * On Node the request id, security and CORS headers go straight on the `ServerResponse`
 * (`system/node-headers.ts`), not through Hono's `c.header()`: every kind of response
 * still carries each of them exactly once (a duplicate would read `a, a` here).
 */
describe('response headers on the Node server', () => {
  let server: Awaited<ReturnType<typeof startTestServer>>;
  beforeAll(async () => {
    server = await startTestServer({ DATAFLOW_PRESET: 'recommended' });
    await loadFixture(server.database, fixture);
  });
  afterAll(() => server?.cleanup());

  it('GET /health: the security headers, Vary and a new request id', async () => {
    const res = await fetch(`${server.url}/health`);
    expect(res.status).toBe(200);
    expectSecure(res);
    expect(res.headers.get('x-request-id')).toMatch(UUID);
  });

  it("echoes a caller's plain request id and replaces anything else", async () => {
    const id = (value: string) =>
      fetch(`${server.url}/health`, { headers: { 'x-request-id': value } }).then((r) =>
        r.headers.get('x-request-id'),
      );
    expect(await id('req-abc_123=')).toBe('req-abc_123=');
    expect(await id('has space')).toMatch(UUID);
    expect(await id('x'.repeat(256))).toMatch(UUID);
  });

  it('a JSON error carries them too, and the id of its body', async () => {
    const res = await fetch(`${server.url}/nope`, { headers: { 'x-request-id': 'req-404' } });
    expect(res.status).toBe(404);
    expectSecure(res);
    expect(res.headers.get('x-request-id')).toBe('req-404');
    expect((await res.json()).error.requestId).toBe('req-404');
  });

  it('a cached answer has its own request id; an allowed origin gets CORS', async () => {
    const token = await server.token({ userId: cast.adminA.id, orgId: cast.orgA.id });
    const get = (requestId: string) =>
      fetch(`${server.url}/api/orgs/${cast.orgA.id}/members?limit=5`, {
        headers: {
          authorization: `Bearer ${token}`,
          'x-request-id': requestId,
          origin: 'http://localhost:5173',
        },
      });
    await (await get('first')).arrayBuffer();
    const hit = await get('second');
    expect(hit.status).toBe(200);
    expect(hit.headers.get('x-cache')).toBe('hit');
    expectSecure(hit);
    expect(hit.headers.get('x-request-id')).toBe('second');
    expect(hit.headers.get('access-control-allow-origin')).toBe('http://localhost:5173');
    expect(hit.headers.get('access-control-expose-headers')).toBe('X-Request-Id');
  });
});

/**
 * Through Hono (`app.request`, as on Workers) the early headers live in the context until a
 * response is made from it: a cache hit, which answers without running the handler, must
 * still carry them (it did not, before the headers moved: `new Response` dropped them).
 */
describe('response headers through Hono', () => {
  it('a cache hit carries the security headers, Vary and CORS', async () => {
    const t = await startTestApp('memory', withLevers('cache-memory'));
    try {
      const people = castFrom(t.fixture);
      const token = await t.token({ userId: people.adminA.id, orgId: people.orgA.id });
      const get = (requestId: string) =>
        t.call(`/api/orgs/${people.orgA.id}/members?limit=5`, {
          token,
          headers: { 'x-request-id': requestId, origin: 'http://localhost:5173' },
        });
      await (await get('first')).arrayBuffer();
      const hit = await get('second');
      expect(hit.headers.get('x-cache')).toBe('hit');
      expectSecure(hit);
      expect(hit.headers.get('x-request-id')).toBe('second');
      expect(hit.headers.get('access-control-allow-origin')).toBe('http://localhost:5173');
    } finally {
      await t.close();
    }
  });
});
