import { mkdtempSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { userEvent } from '../../fixtures/clerk/events.ts';
import { generateFixture } from '../../fixtures/seed/generate.ts';
import { loadFixture } from '../../fixtures/seed/load.ts';
import { signedHeaders } from '../../load/webhook-sender.ts';
import { startTestApp, withLevers } from '../support/harness.ts';
import { castFrom } from '../support/people.ts';
import { startTestServer } from '../support/server.ts';

const fixture = generateFixture('small');
const cast = castFrom(fixture);
/** OWASP's REST set (and CORP) on every answer */
const SECURITY = {
  'content-security-policy': "frame-ancestors 'none'",
  'cross-origin-resource-policy': 'same-origin',
  'strict-transport-security': 'max-age=15552000; includeSubDomains',
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
};
/** helmet's other defaults: on the client's pages only */
const DOCUMENT = {
  'cross-origin-opener-policy': 'same-origin',
  'origin-agent-cluster': '?1',
  'referrer-policy': 'no-referrer',
  'x-dns-prefetch-control': 'off',
  'x-download-options': 'noopen',
  'x-permitted-cross-domain-policies': 'none',
  'x-xss-protection': '0',
};
const UUID = /^[\da-f]{8}-[\da-f]{4}-[\da-f]{4}-[\da-f]{4}-[\da-f]{12}$/;

const expectSecure = (res: Response) => {
  for (const [name, value] of Object.entries(SECURITY)) {
    expect(res.headers.get(name), name).toBe(value);
  }
  for (const name of Object.keys(DOCUMENT)) expect(res.headers.get(name), name).toBeNull();
  expect(res.headers.get('vary')).toBe('Origin');
};

/**
 * On Node the request id, security and CORS headers go straight on the `ServerResponse`
 * (`system/response-headers.ts`), not through Hono's `c.header()`: every kind of response
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

/** On Node too, a coalesced follower's early headers are its own, not copied from its leader. */
describe('a coalesced answer on the Node server', () => {
  let server: Awaited<ReturnType<typeof startTestServer>>;
  beforeAll(async () => {
    server = await startTestServer({
      DATAFLOW_PRESET: 'coalesce',
      DATAFLOW_COALESCE_WINDOW: '5000',
    });
    await loadFixture(server.database, fixture);
  });
  afterAll(() => server?.cleanup());

  it('has the follower’s request id and CORS answer, each header once', async () => {
    const token = await server.token({ userId: cast.adminA.id, orgId: cast.orgA.id });
    const get = (requestId: string, origin?: string) =>
      fetch(`${server.url}/api/orgs/${cast.orgA.id}/members?limit=6`, {
        headers: {
          authorization: `Bearer ${token}`,
          'x-request-id': requestId,
          ...(origin ? { origin } : {}),
        },
      });
    const leader = await get('leader', 'http://localhost:5173');
    const follower = await get('follower');
    const allowedFollower = await get('follower-2', 'http://localhost:5173');
    expect(leader.headers.get('x-coalesced')).toBeNull();
    expect(await follower.text()).toBe(await leader.text());
    for (const [res, id] of [
      [follower, 'follower'],
      [allowedFollower, 'follower-2'],
    ] as const) {
      expect(res.headers.get('x-coalesced')).toBe('follower');
      expectSecure(res);
      expect(res.headers.get('x-request-id')).toBe(id);
    }
    expect(follower.headers.get('access-control-allow-origin')).toBeNull();
    expect(allowedFollower.headers.get('access-control-allow-origin')).toBe(
      'http://localhost:5173',
    );
  });
});

describe("the client's pages", () => {
  let server: Awaited<ReturnType<typeof startTestServer>>;
  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dataflow-client-'));
    writeFileSync(join(dir, 'index.html'), '<!doctype html><title>client</title>');
    server = await startTestServer({ CLIENT_DIR: dir });
  });
  afterAll(() => server?.cleanup());

  it("are documents: the API set and the rest of helmet's, each once", async () => {
    const res = await fetch(`${server.url}/app/members`);
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('<title>client</title>');
    for (const [name, value] of Object.entries({ ...SECURITY, ...DOCUMENT })) {
      expect(res.headers.get(name), name).toBe(value);
    }
    expect(res.headers.get('x-request-id')).toMatch(UUID);
  });
});

/** A request through `node:http`, which builds no `Headers` in this process (fetch would). */
function plainRequest(
  url: string,
  headers: Record<string, string>,
  body?: string,
): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    request(url, { method: body === undefined ? 'GET' : 'POST', headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        text += chunk;
      });
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }),
      );
    })
      .on('error', reject)
      .end(body);
  });
}

/** How many `Headers` objects `run` made (the global class, counted while it runs). */
async function countingHeaders(run: () => Promise<void>): Promise<number> {
  const Original = globalThis.Headers;
  let built = 0;
  globalThis.Headers = class extends Original {
    constructor(init?: HeadersInit) {
      super(init);
      built += 1;
    }
  };
  try {
    await run();
  } finally {
    globalThis.Headers = Original;
  }
  return built;
}

/**
 * On Node the request's headers are read from what Node parsed (`system/request-headers.ts`):
 * the first `c.req.header()` would make @hono/node-server build an undici `Headers` from
 * them, about 5 µs a request. A hot answer, traced or not, builds none at all (nor does
 * its response, without Server-Timing).
 */
describe('request headers on the Node server', () => {
  let server: Awaited<ReturnType<typeof startTestServer>>;
  beforeAll(async () => {
    server = await startTestServer({
      DATAFLOW_PRESET: 'recommended',
      // every request sampled, to an endpoint never reached while the test runs
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9',
      OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
      OTEL_TRACES_SAMPLER_ARG: '1',
      OTEL_BSP_SCHEDULE_DELAY: '600000',
      OTEL_METRIC_EXPORT_INTERVAL: '600000',
      // Server-Timing is a header on the response's `Headers`: off, as in production
      SERVER_TIMING: 'false',
    });
    await loadFixture(server.database, fixture);
  });
  afterAll(() => server?.cleanup());

  it('GET /health and a cache hit build no Headers object', async () => {
    const token = await server.token({ userId: cast.adminA.id, orgId: cast.orgA.id });
    const members = `${server.url}/api/orgs/${cast.orgA.id}/members?limit=5`;
    const caller = {
      authorization: `Bearer ${token}`,
      origin: 'http://localhost:5173',
      'x-request-id': 'req-1',
    };
    expect((await plainRequest(members, caller)).headers['x-cache']).toBe('miss');
    const built = await countingHeaders(async () => {
      const health = await plainRequest(`${server.url}/health`, caller);
      const hit = await plainRequest(members, caller);
      const parented = await plainRequest(members, {
        ...caller,
        traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
      });
      expect([health.status, hit.status, parented.status]).toEqual([200, 200, 200]);
      expect([hit.headers['x-cache'], parented.headers['x-cache']]).toEqual(['hit', 'hit']);
      expect(hit.headers['access-control-allow-origin']).toBe('http://localhost:5173');
      expect(hit.headers['x-request-id']).toBe('req-1');
    });
    expect(built).toBe(0);
  });

  it('a signed webhook delivery is verified without a Headers object', async () => {
    const user = fixture.users.find((u) => u.id === cast.adminA.id)!;
    const body = JSON.stringify(
      userEvent('user.updated', { ...user, updatedAt: Date.now() }, Date.now()),
    );
    const headers = signedHeaders(server.webhookSecret, 'msg_no_headers_1', body);
    const built = await countingHeaders(async () => {
      const res = await plainRequest(`${server.url}/webhooks/clerk`, headers, body);
      expect(res.status).toBe(200);
      expect(JSON.parse(res.body).status).toBe('applied');
      // and a forged one is still refused
      const forged = await plainRequest(
        `${server.url}/webhooks/clerk`,
        { ...headers, 'svix-id': 'msg_no_headers_2' },
        body,
      );
      expect(forged.status).toBe(400);
    });
    expect(built).toBe(0);
  });

  it('the header limit still counts every header line', async () => {
    const res = await plainRequest(`${server.url}/health`, { 'x-padding': 'x'.repeat(9 * 1024) });
    expect(res.status).toBe(431);
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
