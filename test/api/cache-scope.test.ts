import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { routeCache } from '../../system/api/middleware/cache.ts';
import type { CacheScope } from '../../system/levers/cache.ts';
import { startTestApp, type TestContext } from '../support/harness.ts';
import { type Cast, castFrom } from '../support/people.ts';

/**
 * A route that declares `cached('org')` says its answer is the same for every member of
 * the org, so the cache may serve one member's answer to all of them. This audit holds
 * each such declaration to it: every declared GET route is asked, without a cache, by
 * two members of one org who differ in user and role; their answers must be byte-equal.
 */
interface Declared {
  path: string;
  scope: CacheScope;
}

function declaredRoutes(t: TestContext): Declared[] {
  const found = new Map<string, CacheScope>();
  for (const route of t.app.routes) {
    const scope = (route.handler as { cacheScope?: CacheScope }).cacheScope;
    if (route.method === 'GET' && scope) found.set(route.path, scope);
  }
  return [...found].map(([path, scope]) => ({ path, scope }));
}

async function auditOrgScope(
  t: TestContext,
  cast: Cast,
  params: Record<string, string>,
): Promise<string[]> {
  const admin = await t.token({ userId: cast.adminA.id, orgId: cast.orgA.id, role: 'admin' });
  const member = await t.token({ userId: cast.memberA.id, orgId: cast.orgA.id });
  const strip = (text: string) => text.replace(/"requestId":"[^"]*"/g, '');
  const problems: string[] = [];
  for (const { path, scope } of declaredRoutes(t)) {
    if (scope !== 'org') continue;
    const url = path.replace(/:(\w+)/g, (_, name: string) => {
      const value = params[name];
      if (value === undefined) throw new Error(`no value for :${name} in ${path}`);
      return value;
    });
    const [a, b] = await Promise.all([
      t.call(url, { token: admin }),
      t.call(url, { token: member }),
    ]);
    if (a.status !== 200 || b.status !== 200) {
      problems.push(`${path}: statuses ${a.status}/${b.status}, expected 200 for both members`);
    } else if (strip(await a.text()) !== strip(await b.text())) {
      problems.push(`${path}: declared scope 'org' but two members get different answers`);
    }
  }
  return problems;
}

/** A fresh app (routes may be added before its first request) with a project in org A. */
async function auditedApp(addRoutes: (t: TestContext) => void = () => {}) {
  const t = await startTestApp('memory');
  addRoutes(t);
  const cast = castFrom(t.fixture);
  const admin = await t.token({ userId: cast.adminA.id, orgId: cast.orgA.id, role: 'admin' });
  const created = await t.call(`/api/orgs/${cast.orgA.id}/projects`, {
    token: admin,
    method: 'POST',
    json: { name: 'audited' },
  });
  const params = { orgId: cast.orgA.id, projectId: ((await created.json()) as { id: string }).id };
  return { t, cast, params };
}

describe('route cache declarations', () => {
  let app: Awaited<ReturnType<typeof auditedApp>>;
  beforeAll(async () => {
    app = await auditedApp();
  });
  afterAll(() => app?.t.close());

  it('the org routes declare their scope where they are defined', () => {
    expect(Object.fromEntries(declaredRoutes(app.t).map((d) => [d.path, d.scope]))).toEqual({
      '/api/orgs/:orgId': 'user', // carries the caller's role
      '/api/orgs/:orgId/members': 'org',
      '/api/orgs/:orgId/projects': 'org',
      '/api/orgs/:orgId/projects/:projectId': 'org',
    });
  });

  it("every 'org' declaration gives every member the same answer", async () => {
    expect(await auditOrgScope(app.t, app.cast, app.params)).toEqual([]);
  });

  it("catches a per-user field added to a route whose scope stayed 'org'", async () => {
    const cached = routeCache(undefined);
    // a route that grew the caller's role without changing its declaration
    const grown = await auditedApp((t) => {
      t.app.get('/api/orgs/:orgId/summary', cached('org', ['members']), (c) =>
        c.json({ orgId: c.var.member.orgId, role: c.var.member.role }),
      );
    });
    try {
      expect(await auditOrgScope(grown.t, grown.cast, grown.params)).toEqual([
        "/api/orgs/:orgId/summary: declared scope 'org' but two members get different answers",
      ]);
    } finally {
      await grown.t.close();
    }
  });
});
