import type { Fixture } from '../../fixtures/seed/generate.ts';
import type { Membership, Organization, User } from '../../system/db/schema.ts';

/** Well-defined actors picked from a fixture, so tests read as sentences. */
export interface Cast {
  orgA: Organization;
  orgB: Organization;
  adminA: User;
  /** A non-admin member of org A who belongs to no other org. */
  memberA: User;
  /** A member of org B who shares no org with `adminA`. */
  strangerB: User;
  membersOfA: Membership[];
  /** A user in two orgs: `home` (their token's active org) and `away`. */
  bridge: { user: User; home: string; away: string };
}

export function castFrom(fixture: Fixture): Cast {
  const byOrg = new Map<string, Membership[]>();
  const orgsOfUser = new Map<string, Set<string>>();
  for (const m of fixture.memberships) {
    byOrg.set(m.orgId, [...(byOrg.get(m.orgId) ?? []), m]);
    orgsOfUser.set(m.userId, (orgsOfUser.get(m.userId) ?? new Set()).add(m.orgId));
  }
  const [orgA, orgB] = [...fixture.organizations].sort(
    (a, b) => (byOrg.get(b.id)?.length ?? 0) - (byOrg.get(a.id)?.length ?? 0),
  ) as [Organization, Organization];
  const user = (id: string) => fixture.users.find((u) => u.id === id)!;
  const membersOfA = [...(byOrg.get(orgA.id) ?? [])].sort((a, b) => (a.id < b.id ? -1 : 1));
  const adminA = user(
    membersOfA.find((m) => m.role === 'admin' && orgsOfUser.get(m.userId)?.size === 1)!.userId,
  );
  const memberA = user(
    membersOfA.find((m) => m.role === 'member' && orgsOfUser.get(m.userId)?.size === 1)!.userId,
  );
  const strangerB = user(
    byOrg.get(orgB.id)!.find((m) => !orgsOfUser.get(m.userId)!.has(orgA.id))!.userId,
  );
  const [bridgeId, bridgeOrgs] = [...orgsOfUser].find(([, orgs]) => orgs.size >= 2)!;
  const [home, away] = [...bridgeOrgs] as [string, string];
  return {
    orgA,
    orgB,
    adminA,
    memberA,
    strangerB,
    membersOfA,
    bridge: { user: user(bridgeId), home, away },
  };
}

/**
 * The lever equivalence corpus: reads over the seed as several callers (admin, member,
 * stranger; pages, cursors, another org, a bad parameter). Levers never change answers,
 * so every preset and runtime must answer each exactly as `baseline` does.
 */
export async function readCorpus(
  cast: Cast,
  token: (options: { userId: string; orgId: string; role?: 'admin' | 'member' }) => Promise<string>,
): Promise<Array<[path: string, token: string]>> {
  const admin = await token({ userId: cast.adminA.id, orgId: cast.orgA.id, role: 'admin' });
  const member = await token({ userId: cast.memberA.id, orgId: cast.orgA.id });
  const stranger = await token({ userId: cast.strangerB.id, orgId: cast.orgB.id });
  return [
    [`/api/orgs/${cast.orgA.id}/members?limit=50`, admin],
    [`/api/orgs/${cast.orgA.id}/members?limit=7`, member],
    [`/api/orgs/${cast.orgA.id}/members?limit=100&cursor=bTpvcmdtZW1fMA`, admin],
    [`/api/orgs/${cast.orgA.id}`, admin],
    [`/api/orgs/${cast.orgA.id}`, member],
    [`/api/orgs/${cast.orgA.id}/projects`, member],
    [`/api/orgs/${cast.orgB.id}/members`, admin],
    [`/api/orgs/${cast.orgB.id}/members`, stranger],
    ['/api/me', admin],
    ['/api/me', stranger],
    [`/api/users/${cast.memberA.id}`, admin],
    [`/api/users/${cast.strangerB.id}`, admin],
    [`/api/orgs/${cast.orgA.id}/members?limit=abc`, admin],
  ];
}

/** Bodies compared across apps: the request id differs by design. */
export const withoutRequestId = (text: string) =>
  text.replace(/"requestId":"[^"]*"/g, '"requestId":"-"');
