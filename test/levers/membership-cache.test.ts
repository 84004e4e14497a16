import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deletedEvent, membershipEvent } from '../../fixtures/clerk/events.ts';
import { generateFixture } from '../../fixtures/seed/generate.ts';
import { loadFixture } from '../../fixtures/seed/load.ts';
import { type SqldServer, startSqld } from '../../load/infra/sqld.ts';
import { signedHeaders } from '../../load/webhook-sender.ts';
import type { Membership } from '../../system/db/schema.ts';
import { castFrom } from '../support/people.ts';
import { startTestServer, type TestServer } from '../support/server.ts';

/**
 * The default preset caches the membership check: a cache hit touches no database, and
 * a membership that a webhook ends is refused on the very next request, because the
 * change log invalidates the cached membership before the webhook answers.
 */
describe.each(['file', 'sqld'] as const)('membership cache on %s', (backend) => {
  const fixture = generateFixture('small');
  const cast = castFrom(fixture);
  let sqld: SqldServer | undefined;
  let server: TestServer & { cleanup(): Promise<void> };

  beforeAll(async () => {
    sqld = backend === 'sqld' ? await startSqld() : undefined;
    server = await startTestServer({
      DATAFLOW_PRESET: 'recommended',
      // no background poll in the test: the round-trip counts are this test's requests only
      CHANGE_POLL_MS: '600000',
      ...(sqld ? { DATABASE_URL: sqld.url } : {}),
    });
    await loadFixture(server.database, fixture);
  });
  afterAll(async () => {
    await server?.cleanup();
    await sqld?.stop();
  });

  const get = (path: string, token: string) =>
    fetch(`${server.url}${path}`, { headers: { authorization: `Bearer ${token}` } });
  const deliver = async (body: string, id: string) => {
    const res = await fetch(`${server.url}/webhooks/clerk`, {
      method: 'POST',
      headers: signedHeaders(server.webhookSecret, id, body),
      body,
    });
    expect(((await res.json()) as { status: string }).status).toBe('applied');
  };
  const membershipOf = (userId: string, orgId: string) =>
    fixture.memberships.find((m) => m.userId === userId && m.orgId === orgId)!;

  it('a cache hit touches no database: token, membership and answer all cached', async () => {
    const token = await server.token({
      userId: cast.adminA.id,
      orgId: cast.orgA.id,
      role: 'admin',
    });
    const path = `/api/orgs/${cast.orgA.id}/members?limit=20`;
    expect((await get(path, token)).headers.get('x-cache')).toBe('miss');
    const before = server.database.stats().roundTrips;
    const hit = await get(path, token);
    expect(hit.status).toBe(200);
    expect(hit.headers.get('x-cache')).toBe('hit');
    expect(server.database.stats().roundTrips - before).toBe(0);
  });

  it('a membership ended by a webhook is refused on the very next request', async () => {
    const member = cast.membersOfA.find(
      (m) => m.role === 'member' && m.userId !== cast.memberA.id,
    ) as Membership;
    const token = await server.token({ userId: member.userId, orgId: cast.orgA.id });
    const path = `/api/orgs/${cast.orgA.id}/projects`;
    expect((await get(path, token)).status).toBe(200);
    expect((await get(path, token)).status).toBe(200); // served with the cached membership
    const at = Date.now();
    await deliver(
      JSON.stringify(
        membershipEvent('organizationMembership.deleted', { ...member, updatedAt: at }, at),
      ),
      `msg_end_${member.id}_${backend}`,
    );
    const refused = await get(path, token);
    expect(refused.status).toBe(404);
    expect(JSON.stringify(await refused.json())).not.toContain('"data"');
  });

  it('a deleted user is refused in every org at once; a role change is seen at once', async () => {
    const { user, home, away } = cast.bridge;
    const homeToken = await server.token({ userId: user.id, orgId: home });
    const awayToken = await server.token({ userId: user.id, orgId: away });
    expect((await get(`/api/orgs/${home}`, homeToken)).status).toBe(200);
    expect((await get(`/api/orgs/${away}`, awayToken)).status).toBe(200);

    // a demotion: the cached membership carried the old role
    const admin = membershipOf(cast.adminA.id, cast.orgA.id);
    const adminToken = await server.token({ userId: admin.userId, orgId: cast.orgA.id });
    expect(
      ((await (await get(`/api/orgs/${cast.orgA.id}`, adminToken)).json()) as { role: string })
        .role,
    ).toBe('admin');
    const at = Date.now();
    await deliver(
      JSON.stringify(
        membershipEvent(
          'organizationMembership.updated',
          { ...admin, role: 'member', updatedAt: at },
          at,
        ),
      ),
      `msg_demote_${admin.id}_${backend}`,
    );
    expect(
      ((await (await get(`/api/orgs/${cast.orgA.id}`, adminToken)).json()) as { role: string })
        .role,
    ).toBe('member');

    await deliver(
      JSON.stringify(deletedEvent('user.deleted', user.id, Date.now())),
      `msg_del_${user.id}_${backend}`,
    );
    expect((await get(`/api/orgs/${home}`, homeToken)).status).toBe(404);
    expect((await get(`/api/orgs/${away}`, awayToken)).status).toBe(404);
  });
});
