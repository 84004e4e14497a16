import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { membershipEvent, userEvent } from '../../fixtures/clerk/events.ts';
import { signedHeaders } from '../../load/webhook-sender.ts';
import { type Cast, castFrom, readCorpus, withoutRequestId } from '../support/people.ts';
import { startWorkerTestApp } from '../support/worker.ts';

type WorkerContext = Awaited<ReturnType<typeof startWorkerTestApp>>;

/**
 * The cache levels on Workers, each keyed by the org object's generation
 * (system/levers/cache-versioned.ts): `memory` (this isolate), `edge` (the Cache API),
 * `distributed` (Workers KV). Two isolates of one deployment share the org objects and
 * the KV namespace but not memory: a write through one must never leave the other
 * serving a stale answer.
 */
describe.each([
  ['memory', 'recommended', {}],
  ['edge', 'recommended', { DATAFLOW_CACHE_LEVEL: 'edge' }],
  ['distributed', 'cache-redis', {}],
] as const)('cache level %s on workerd (%s)', (level, preset, env) => {
  let t: WorkerContext;
  let cast: Cast;
  let admin: string;
  /** A read as `token` through isolate `isolate`. */
  const read = (isolate: number, path: string, token = admin) =>
    t.worker.fetch(isolate, path, { headers: { authorization: `Bearer ${token}` } });
  const members = () => `/api/orgs/${cast.orgA.id}/members?limit=100`;
  const webhook = async (event: unknown, id: string) => {
    const body = JSON.stringify(event);
    const res = await t.worker.fetch(0, '/webhooks/clerk', {
      method: 'POST',
      headers: signedHeaders(t.webhookSecret, id, body),
      body,
    });
    expect(((await res.json()) as { status: string }).status).toBe('applied');
  };

  beforeAll(async () => {
    t = await startWorkerTestApp({ preset, env, isolates: 2 });
    cast = castFrom(t.fixture);
    admin = await t.token({ userId: cast.adminA.id, orgId: cast.orgA.id, role: 'admin' });
  }, 60_000);
  afterAll(() => t?.close());

  it('answers the corpus exactly as baseline, cached or not', async () => {
    const base = await startWorkerTestApp();
    try {
      const corpus = await readCorpus(cast, t.token);
      for (const [path, token] of corpus) {
        const expected = await base.call(path, { token });
        const expectedBody = withoutRequestId(await expected.text());
        for (let round = 0; round < 2; round++) {
          const res = await t.call(path, { token });
          expect(res.status, `${path} (round ${round})`).toBe(expected.status);
          expect(withoutRequestId(await res.text()), `${path} (round ${round})`).toBe(expectedBody);
        }
      }
    } finally {
      await base.close();
    }
  });

  it('serves a repeated read without a database round trip (membership included)', async () => {
    await read(0, members());
    const before = t.database.stats().roundTrips;
    const hit = await read(0, members());
    expect(hit.status).toBe(200);
    expect(hit.headers.get('x-cache')).toBe('hit');
    expect(t.database.stats().roundTrips - before).toBe(0);
  });

  it('no stale read in the other isolate after a project write', async () => {
    const projects = `/api/orgs/${cast.orgA.id}/projects`;
    await read(1, projects); // cached in isolate 1 (and in the shared stores)
    for (const name of ['edge-fresh-1', 'edge-fresh-2']) {
      const created = await t.call(projects, { token: admin, method: 'POST', json: { name } });
      expect(created.status).toBe(201);
      const names = ((await (await read(1, projects)).json()) as { data: { name: string }[] }).data;
      expect(names.map((p) => p.name)).toContain(name);
    }
  });

  it('no stale read in either isolate after a webhook commits', async () => {
    await Promise.all([read(0, members()), read(1, members())]);
    for (const name of ['EdgeRenamed1', 'EdgeRenamed2']) {
      const now = Date.now();
      await webhook(
        userEvent('user.updated', { ...cast.memberA, firstName: name, updatedAt: now }, now),
        `msg_${level}_${name}_${now}`,
      );
      for (const isolate of [0, 1]) {
        const body = (await (await read(isolate, members())).json()) as {
          data: { user: { id: string; firstName: string } | null }[];
        };
        const member = body.data.find((m) => m.user?.id === cast.memberA.id);
        expect(member?.user?.firstName, `isolate ${isolate}`).toBe(name);
      }
    }
  });

  it('a membership ended by a webhook is refused on the very next request, in any isolate', async () => {
    const member = await t.token({ userId: cast.memberA.id, orgId: cast.orgA.id });
    const org = `/api/orgs/${cast.orgA.id}`;
    for (const isolate of [0, 1]) expect((await read(isolate, org, member)).status).toBe(200);
    const membership = cast.membersOfA.find((m) => m.userId === cast.memberA.id)!;
    const now = Date.now();
    await webhook(
      membershipEvent('organizationMembership.deleted', { ...membership, updatedAt: now }, now),
      `msg_${level}_left_${now}`,
    );
    for (const isolate of [0, 1]) {
      expect((await read(isolate, org, member)).status, `isolate ${isolate}`).toBe(404);
    }
  });

  it('keys are scoped: another org and another member never get these entries', async () => {
    await read(0, `/api/orgs/${cast.orgA.id}`);
    const stranger = await t.token({ userId: cast.strangerB.id, orgId: cast.orgB.id });
    const other = (await (
      await read(0, `/api/orgs/${cast.orgB.id}/members?limit=100`, stranger)
    ).json()) as { data: { user: { id: string } | null }[] };
    expect(other.data.map((m) => m.user?.id)).not.toContain(cast.adminA.id);
    expect((await read(0, `/api/orgs/${cast.orgA.id}`, stranger)).status).toBe(404);
  });
});
