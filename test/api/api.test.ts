import { eq } from 'drizzle-orm';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateDevKeyPair } from '../../fixtures/auth/keys.ts';
import { mintSessionToken } from '../../fixtures/auth/token.ts';
import { memberships } from '../../system/db/schema.ts';
import { earlyAnswer, repeatedStream } from '../support/early-answer.ts';
import { BACKENDS, startTestApp, type TestContext } from '../support/harness.ts';
import { type Cast, castFrom } from '../support/people.ts';
import { startWorkerTestApp } from '../support/worker.ts';

// The whole API surface, against :memory:, a file: database and a real sqld server, and
// the same contract against the Worker on workerd over sqld (test/support/worker.ts).
describe.each([...BACKENDS, 'workerd'] as const)('API on %s', (backend) => {
  let t: TestContext;
  let cast: Cast;
  let adminToken: string;
  let memberToken: string;
  const members = () => `/api/orgs/${cast.orgA.id}/members`;
  const projects = () => `/api/orgs/${cast.orgA.id}/projects`;

  beforeAll(async () => {
    t = backend === 'workerd' ? await startWorkerTestApp() : await startTestApp(backend);
    cast = castFrom(t.fixture);
    adminToken = await t.token({ userId: cast.adminA.id, orgId: cast.orgA.id, role: 'admin' });
    memberToken = await t.token({ userId: cast.memberA.id, orgId: cast.orgA.id, role: 'member' });
  }, 60_000);
  afterAll(() => t?.close());

  describe('health', () => {
    it('GET /health is public and alive', async () => {
      const res = await t.call('/health');
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ status: 'ok' });
    });

    it('GET /ready reports the database and migrations', async () => {
      const res = await t.call('/ready');
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({
        status: 'ready',
        checks: { database: 'ok', migrations: 'ok' },
      });
    });
  });

  describe('authentication', () => {
    const expectOpaque401 = async (res: Response) => {
      expect(res.status).toBe(401);
      const body = await res.json();
      expect(body.error.code).toBe('unauthenticated');
      expect(body.error.message).toBe('a valid session token is required');
      expect(JSON.stringify(body)).not.toMatch(/expired|signature|azp|party|nbf|alg/i);
    };

    it('refuses a request without a token', async () => {
      await expectOpaque401(await t.call('/api/me'));
    });

    it('refuses a malformed token and a non-bearer scheme', async () => {
      await expectOpaque401(await t.call('/api/me', { token: 'not-a-jwt' }));
      await expectOpaque401(
        await t.call('/api/me', { headers: { authorization: `Basic ${adminToken}` } }),
      );
    });

    it('refuses alg "none"', async () => {
      const encode = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
      const now = Math.floor(Date.now() / 1000);
      const unsigned = `${encode({ alg: 'none', typ: 'JWT' })}.${encode({
        sub: cast.adminA.id,
        azp: 'http://localhost:5173',
        iat: now,
        nbf: now,
        exp: now + 600,
        o: { id: cast.orgA.id, rol: 'admin' },
      })}.`;
      await expectOpaque401(await t.call('/api/me', { token: unsigned }));
    });

    it('refuses an expired token and one not valid yet', async () => {
      const past = Math.floor(Date.now() / 1000) - 7200;
      const expired = await t.token({ userId: cast.adminA.id, issuedAt: past, ttlSeconds: 60 });
      await expectOpaque401(await t.call('/api/me', { token: expired }));
      const early = await t.token({ userId: cast.adminA.id, notBeforeOffset: 600 });
      await expectOpaque401(await t.call('/api/me', { token: early }));
    });

    it('refuses a token signed with another key', async () => {
      const other = generateDevKeyPair();
      const forged = await mintSessionToken({
        privateKeyPem: other.privateKey,
        userId: cast.adminA.id,
        orgId: cast.orgA.id,
        role: 'admin',
      });
      await expectOpaque401(await t.call('/api/me', { token: forged }));
    });

    it('refuses an unauthorized azp', async () => {
      const token = await t.token({ userId: cast.adminA.id, azp: 'https://evil.example' });
      await expectOpaque401(await t.call('/api/me', { token }));
    });

    it('refuses a token whose payload was altered after signing', async () => {
      const [h, , s] = adminToken.split('.');
      const body = Buffer.from(
        JSON.stringify({ sub: cast.strangerB.id, exp: 9999999999, iat: 1, nbf: 1 }),
      ).toString('base64url');
      await expectOpaque401(await t.call('/api/me', { token: `${h}.${body}.${s}` }));
    });

    it('accepts the legacy org_id / org_role claims', async () => {
      const legacy = await t.token({
        userId: cast.adminA.id,
        orgId: cast.orgA.id,
        role: 'admin',
        legacyOrgClaims: true,
      });
      const res = await t.call(`/api/orgs/${cast.orgA.id}`, { token: legacy });
      expect(res.status).toBe(200);
      expect((await res.json()).role).toBe('admin');
    });

    it('signs with RS256 only: an HS256 token made from the public key is refused', async () => {
      const now = Math.floor(Date.now() / 1000);
      const hs = await new SignJWT({ azp: 'http://localhost:5173' })
        .setProtectedHeader({ alg: 'HS256' })
        .setSubject(cast.adminA.id)
        .setIssuedAt(now)
        .setNotBefore(now)
        .setExpirationTime(now + 600)
        .sign(new TextEncoder().encode(t.keys.publicKey));
      await expectOpaque401(await t.call('/api/me', { token: hs }));
    });
  });

  describe('GET /api/me', () => {
    it("returns the caller's profile and organizations", async () => {
      const res = await t.call('/api/me', { token: adminToken });
      expect(res.status).toBe(200);
      const body = await res.json();
      expect(body.userId).toBe(cast.adminA.id);
      expect(body.activeOrgId).toBe(cast.orgA.id);
      expect(body.user.email).toBe(cast.adminA.email);
      expect(body.organizations.map((o: { id: string }) => o.id)).toEqual([cast.orgA.id]);
      expect(body.organizations[0].role).toBe('admin');
    });
  });

  describe('org scoping', () => {
    it('403 on an org route when the token has no active org', async () => {
      const noOrg = await t.token({ userId: cast.adminA.id });
      const res = await t.call(members(), { token: noOrg });
      expect(res.status).toBe(403);
      expect((await res.json()).error.code).toBe('no_active_org');
    });

    it('404 with no data when reading another org by path', async () => {
      for (const path of ['', '/members', '/projects']) {
        const res = await t.call(`/api/orgs/${cast.orgB.id}${path}`, { token: adminToken });
        expect(res.status).toBe(404);
        const text = await res.text();
        expect(text).not.toContain(cast.orgB.name);
        expect(text).not.toContain(cast.strangerB.id);
      }
    });

    it("404 for a member of two orgs reading the org that is not the token's active one", async () => {
      const { user, home, away } = cast.bridge;
      const token = await t.token({ userId: user.id, orgId: home });
      expect((await t.call(`/api/orgs/${home}/members`, { token })).status).toBe(200);
      const res = await t.call(`/api/orgs/${away}/members`, { token });
      expect(res.status).toBe(404);
      expect((await res.json()).error.code).toBe('not_found');
    });

    it('ignores an org id in the query string', async () => {
      const res = await t.call(`${members()}?orgId=${cast.orgB.id}&org_id=${cast.orgB.id}`, {
        token: adminToken,
      });
      expect(res.status).toBe(200);
      const body = await res.text();
      expect(body).not.toContain(cast.strangerB.id);
    });

    it('uses the token org, not the body, when writing', async () => {
      const res = await t.call(projects(), {
        token: memberToken,
        method: 'POST',
        json: { name: 'Scoped', orgId: cast.orgB.id, createdBy: cast.strangerB.id, role: 'admin' },
      });
      expect(res.status).toBe(201);
      const created = await res.json();
      expect(created.orgId).toBe(cast.orgA.id);
      expect(created.createdBy).toBe(cast.memberA.id);
      // and it is invisible from org B
      const strangerToken = await t.token({ userId: cast.strangerB.id, orgId: cast.orgB.id });
      const other = await t.call(`/api/orgs/${cast.orgB.id}/projects/${created.id}`, {
        token: strangerToken,
      });
      expect(other.status).toBe(404);
    });

    it('404 when the token is valid but the membership was removed in the database', async () => {
      const leaver = cast.membersOfA.find(
        (m) => m.userId !== cast.adminA.id && m.userId !== cast.memberA.id,
      )!;
      const token = await t.token({ userId: leaver.userId, orgId: cast.orgA.id });
      expect((await t.call(members(), { token })).status).toBe(200);
      await t.database.db
        .update(memberships)
        .set({ deletedAt: Date.now() })
        .where(eq(memberships.id, leaver.id));
      expect((await t.call(members(), { token })).status).toBe(404);
    });

    it('GET /api/users/:id only for users sharing an org', async () => {
      const self = await t.call(`/api/users/${cast.adminA.id}`, { token: adminToken });
      expect(self.status).toBe(200);
      const colleague = await t.call(`/api/users/${cast.memberA.id}`, { token: adminToken });
      expect(colleague.status).toBe(200);
      expect((await colleague.json()).email).toBe(cast.memberA.email);
      const stranger = await t.call(`/api/users/${cast.strangerB.id}`, { token: adminToken });
      expect(stranger.status).toBe(404);
      expect(await stranger.text()).not.toContain(cast.strangerB.email!);
      const invalid = await t.call('/api/users/nope', { token: adminToken });
      expect(invalid.status).toBe(400);
    });
  });

  describe('GET /api/orgs/:orgId/members', () => {
    it('pages through every live member exactly once, in order', async () => {
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const query: string = cursor ? `?limit=7&cursor=${cursor}` : '?limit=7';
        const res = await t.call(`${members()}${query}`, { token: adminToken });
        expect(res.status).toBe(200);
        const body = await res.json();
        expect(body.data.length).toBeLessThanOrEqual(7);
        seen.push(...body.data.map((m: { membershipId: string }) => m.membershipId));
        cursor = body.nextCursor;
      } while (cursor);
      const live = (
        await t.database.db.select().from(memberships).where(eq(memberships.orgId, cast.orgA.id))
      )
        .filter((m) => m.deletedAt === null)
        .map((m) => m.id)
        .sort();
      expect(seen).toEqual(live);
    });

    it('returns members with their user profiles', async () => {
      const res = await t.call(`${members()}?limit=100`, { token: adminToken });
      const body = await res.json();
      const admin = body.data.find(
        (m: { user: { id: string } | null }) => m.user?.id === cast.adminA.id,
      );
      expect(admin.role).toBe('admin');
      expect(admin.user.email).toBe(cast.adminA.email);
    });

    it('costs one query per member without batching (the N+1 baseline)', async () => {
      const before = t.database.stats().roundTrips;
      const res = await t.call(`${members()}?limit=50`, { token: adminToken });
      const page = (await res.json()).data.length;
      expect(page).toBe(50);
      // membership check + the page query + one user query per member
      expect(t.database.stats().roundTrips - before).toBe(2 + page);
    });

    it('clamps a huge limit and refuses nonsense', async () => {
      const huge = await t.call(`${members()}?limit=100000`, { token: adminToken });
      expect(huge.status).toBe(200);
      expect((await huge.json()).data.length).toBeLessThanOrEqual(100);
      for (const limit of ['-5', '0', 'NaN', 'abc', '1.5', 'Infinity']) {
        const res = await t.call(`${members()}?limit=${limit}`, { token: adminToken });
        expect(res.status, `limit=${limit}`).toBe(400);
        const body = await res.json();
        expect(body.error.code).toBe('invalid_request');
        expect(body.error.message).toContain('query.limit');
      }
    });

    it('refuses a tampered cursor', async () => {
      const forged = Buffer.from('m:../../etc').toString('base64url');
      for (const cursor of ['garbage!!', forged, Buffer.from('p:proj_x').toString('base64url')]) {
        const res = await t.call(`${members()}?cursor=${cursor}`, { token: adminToken });
        expect(res.status, cursor).toBe(400);
      }
    });
  });

  describe('projects', () => {
    it('creates, reads, updates and lists within the org', async () => {
      const created = await t.call(projects(), {
        token: memberToken,
        method: 'POST',
        json: { name: '  Apollo  ' },
      });
      expect(created.status).toBe(201);
      const project = await created.json();
      expect(project).toMatchObject({ name: 'Apollo', status: 'active', version: 1 });

      const patched = await t.call(`${projects()}/${project.id}`, {
        token: memberToken,
        method: 'PATCH',
        json: { status: 'archived' },
      });
      expect(patched.status).toBe(200);
      expect(await patched.json()).toMatchObject({ status: 'archived', version: 2 });

      const listed = await t.call(`${projects()}?status=archived`, { token: memberToken });
      const ids = (await listed.json()).data.map((p: { id: string }) => p.id);
      expect(ids).toContain(project.id);
    });

    it('deleting is admin-only and leaves a tombstone that reads as 404', async () => {
      const created = await (
        await t.call(projects(), { token: memberToken, method: 'POST', json: { name: 'Doomed' } })
      ).json();
      const path = `${projects()}/${created.id}`;
      const denied = await t.call(path, { token: memberToken, method: 'DELETE' });
      expect(denied.status).toBe(403);
      expect((await denied.json()).error.code).toBe('forbidden');
      const deleted = await t.call(path, { token: adminToken, method: 'DELETE' });
      expect(deleted.status).toBe(204);
      expect((await t.call(path, { token: adminToken })).status).toBe(404);
      expect((await t.call(path, { token: adminToken, method: 'DELETE' })).status).toBe(404);
      expect(
        (await t.call(path, { token: adminToken, method: 'PATCH', json: { name: 'Back' } })).status,
      ).toBe(404);
    });

    it('the admin role comes from the database, not the token claim', async () => {
      const inflated = await t.token({
        userId: cast.memberA.id,
        orgId: cast.orgA.id,
        role: 'admin',
      });
      const created = await (
        await t.call(projects(), { token: memberToken, method: 'POST', json: { name: 'Kept' } })
      ).json();
      const res = await t.call(`${projects()}/${created.id}`, {
        token: inflated,
        method: 'DELETE',
      });
      expect(res.status).toBe(403);
    });

    it('validates bodies and names the field', async () => {
      const cases: Array<[unknown, string]> = [
        [{}, 'json.name'],
        [{ name: '' }, 'json.name'],
        [{ name: 'x', status: 'exploded' }, 'json.status'],
        [{ name: 'x'.repeat(500) }, 'json.name'],
      ];
      for (const [json, field] of cases) {
        const res = await t.call(projects(), { token: memberToken, method: 'POST', json });
        expect(res.status).toBe(400);
        expect((await res.json()).error.message).toContain(field);
      }
      const emptyPatch = await t.call(`${projects()}/proj_doesnotexist`, {
        token: memberToken,
        method: 'PATCH',
        json: {},
      });
      expect(emptyPatch.status).toBe(400);
    });

    it('concurrent writes all commit (busy timeout, immediate transactions)', async () => {
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          t.call(projects(), { token: memberToken, method: 'POST', json: { name: `c${i}` } }),
        ),
      );
      expect(results.map((r) => r.status)).toEqual(Array(20).fill(201));
    });
  });

  describe('request hygiene', () => {
    it('malformed JSON is a 400 with the stable error shape', async () => {
      const res = await t.call(projects(), {
        token: memberToken,
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        json: undefined,
      });
      expect(res.status).toBe(400);
      const raw = await t.app.request(projects(), {
        method: 'POST',
        headers: { authorization: `Bearer ${memberToken}`, 'content-type': 'application/json' },
        body: '{"name": ',
      });
      expect(raw.status).toBe(400);
      const body = await raw.json();
      expect(body.error.code).toBe('malformed_json');
      expect(typeof body.error.requestId).toBe('string');
    });

    it('a body that is not JSON is a 415', async () => {
      const res = await t.app.request(projects(), {
        method: 'POST',
        headers: { authorization: `Bearer ${memberToken}`, 'content-type': 'text/plain' },
        body: 'name=x',
      });
      expect(res.status).toBe(415);
      expect((await res.json()).error.code).toBe('unsupported_media_type');
    });

    it('an oversized body is a 413, with Content-Length and chunked', async () => {
      const big = JSON.stringify({ name: 'x'.repeat(70 * 1024) });
      // over HTTP (workerd) the 413 can come before the body is all sent (earlyAnswer)
      const declared = await earlyAnswer(() =>
        t.app.request(projects(), {
          method: 'POST',
          headers: { authorization: `Bearer ${memberToken}`, 'content-type': 'application/json' },
          body: big,
        }),
      );
      expect(declared.status).toBe(413);
      const chunked = await earlyAnswer(() =>
        t.app.request(projects(), {
          method: 'POST',
          headers: {
            authorization: `Bearer ${memberToken}`,
            'content-type': 'application/json',
            'transfer-encoding': 'chunked',
          },
          body: repeatedStream(big.slice(0, 8192), 10),
          // @ts-expect-error Node's fetch needs this for a streaming body
          duplex: 'half',
        }),
      );
      expect(chunked.status).toBe(413);
      expect((await chunked.json()).error.code).toBe('payload_too_large');
    });

    it('oversized headers are a 431', async () => {
      const res = await t.call('/api/me', {
        token: adminToken,
        headers: { 'x-padding': 'p'.repeat(9000) },
      });
      expect(res.status).toBe(431);
      expect((await res.json()).error.code).toBe('headers_too_large');
    });

    it('unknown routes are a JSON 404; the request id is echoed', async () => {
      const res = await t.call('/nope', { headers: { 'x-request-id': 'req-abc-123' } });
      expect(res.status).toBe(404);
      expect(res.headers.get('x-request-id')).toBe('req-abc-123');
      expect((await res.json()).error).toEqual({
        code: 'not_found',
        message: 'route not found',
        requestId: 'req-abc-123',
      });
    });

    it('CORS allows only the configured origins; secure headers are set', async () => {
      const allowed = await t.call('/health', { headers: { origin: 'http://localhost:5173' } });
      expect(allowed.headers.get('access-control-allow-origin')).toBe('http://localhost:5173');
      expect(allowed.headers.get('x-content-type-options')).toBe('nosniff');
      const denied = await t.call('/health', { headers: { origin: 'https://evil.example' } });
      expect(denied.headers.get('access-control-allow-origin')).toBeNull();
    });
  });
});
