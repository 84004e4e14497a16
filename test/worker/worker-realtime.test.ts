import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { membershipEvent, userEvent } from '../../fixtures/clerk/events.ts';
import { signedHeaders } from '../../load/webhook-sender.ts';
import { orgChangesAfter } from '../../system/db/queries/changes.ts';
import { type Cast, castFrom } from '../support/people.ts';
import { rawSocket, recordingClient, waitFor } from '../support/server.ts';
import { startWorkerTestApp } from '../support/worker.ts';

/**
 * Realtime on Workers: the org's Durable Object (system/worker-org.ts) is the hub, with
 * the Hibernation API, the protocol of realtime/protocol.ts. Writes and webhooks go
 * through the Worker; the object reads the org's rows from sqld after each commit.
 */
describe('realtime on workerd: the org Durable Object as the hub', () => {
  let t: Awaited<ReturnType<typeof startWorkerTestApp>>;
  let cast: Cast;
  let admin: string;
  let wsUrl: string;
  const closers: Array<() => void> = [];

  beforeAll(async () => {
    t = await startWorkerTestApp({ preset: 'recommended' });
    cast = castFrom(t.fixture);
    admin = await t.token({ userId: cast.adminA.id, orgId: cast.orgA.id, role: 'admin' });
    wsUrl = `${t.worker.url.replace(/^http/, 'ws')}/ws`;
  }, 60_000);
  afterEach(() => {
    for (const close of closers.splice(0)) close();
  });
  afterAll(() => t?.close());

  const client = (token: string, lastEventId?: number) => {
    const c = recordingClient({
      url: wsUrl,
      token: () => token,
      ...(lastEventId === undefined ? {} : { lastEventId }),
    });
    closers.push(() => c.close());
    return c;
  };
  const createProject = async (name: string) => {
    const res = await t.call(`/api/orgs/${cast.orgA.id}/projects`, {
      token: admin,
      method: 'POST',
      json: { name },
    });
    expect(res.status).toBe(201);
  };
  const webhook = async (event: unknown) => {
    const body = JSON.stringify(event);
    const res = await t.worker.fetch(0, '/webhooks/clerk', {
      method: 'POST',
      headers: signedHeaders(t.webhookSecret, `msg_rt_${Date.now()}_${Math.random()}`, body),
      body,
    });
    expect(((await res.json()) as { status: string }).status).toBe('applied');
  };
  /** Org A's change ids in the log after `after` (what every socket must get, in order). */
  const orgIdsAfter = async (after: number) =>
    (await orgChangesAfter(t.database.db, cast.orgA.id, after, 10_000)).map((r) => r.id);

  it('refuses an upgrade without a token (401) and from a foreign origin (403)', async () => {
    expect(await rawSocket(wsUrl, null)).toMatchObject({ refused: 401 });
    expect(await rawSocket(wsUrl, admin, { origin: 'https://evil.example' })).toMatchObject({
      refused: 403,
    });
  });

  it('a webhook committed through the Worker reaches the socket, after hello', async () => {
    const raw = await rawSocket(wsUrl, admin);
    if ('refused' in raw) throw new Error(`refused ${raw.refused}`);
    closers.push(() => raw.ws.terminate());
    await waitFor(() => raw.messages.some((m) => m.type === 'hello'), 5000, 'hello');
    const hello = raw.messages[0]!;
    expect(hello).toMatchObject({ type: 'hello', orgId: cast.orgA.id, heartbeatMs: 0 });
    const now = Date.now();
    const logReads = t.changeLogReads();
    await webhook(
      userEvent('user.updated', { ...cast.memberA, firstName: 'Pushed', updatedAt: now }, now),
    );
    // the Worker touched the org from the rows its batch returned: no read of the log
    expect(t.changeLogReads()).toBe(logReads);
    await waitFor(() => raw.messages.some((m) => m.type === 'change'), 5000, 'the change');
    const change = raw.messages.find((m) => m.type === 'change')!;
    expect(change).toMatchObject({ entity: 'user', entityId: cast.memberA.id, op: 'upsert' });
    expect(change.id as number).toBeGreaterThan(hello.lastEventId as number);
  });

  it('every change of the org, once and in order, under concurrent writes', async () => {
    const c = client(admin);
    await c.ready();
    const from = c.lastEventId();
    await Promise.all(Array.from({ length: 12 }, (_, i) => createProject(`rt-concurrent-${i}`)));
    const expected = await orgIdsAfter(from);
    expect(expected.length).toBeGreaterThanOrEqual(12);
    await waitFor(() => c.changes.length >= expected.length, 5000, 'all changes');
    expect(c.changes).toEqual(expected);
  });

  it('resume after a reconnect replays the missed changes in order, then live ones', async () => {
    const first = client(admin);
    await first.ready();
    const resumeFrom = first.lastEventId();
    first.close();
    for (const name of ['rt-missed-1', 'rt-missed-2', 'rt-missed-3']) await createProject(name);
    const missed = await orgIdsAfter(resumeFrom);
    expect(missed).toHaveLength(3);
    const second = client(admin, resumeFrom);
    await second.ready();
    await waitFor(() => second.changes.length >= 3, 5000, 'the replay');
    expect(second.changes).toEqual(missed);
    expect(second.resets).toEqual([]);
    await createProject('rt-live');
    await waitFor(() => second.changes.length >= 4, 5000, 'the live change');
    expect(second.changes).toEqual(await orgIdsAfter(resumeFrom));
  });

  it('an unknown resume point gets a reset, not a silent gap', async () => {
    const c = client(admin, 987_654_321);
    await c.ready();
    await waitFor(() => c.resets.length > 0, 5000, 'the reset');
    expect(c.resets).toEqual(['unknown']);
  });

  it('closes the socket with 4403 when the membership ends', async () => {
    const member = await t.token({ userId: cast.memberA.id, orgId: cast.orgA.id });
    const raw = await rawSocket(wsUrl, member);
    if ('refused' in raw) throw new Error(`refused ${raw.refused}`);
    const closed = new Promise<number>((resolve) => raw.ws.once('close', (code) => resolve(code)));
    await waitFor(() => raw.messages.some((m) => m.type === 'hello'), 5000, 'hello');
    const membership = cast.membersOfA.find((m) => m.userId === cast.memberA.id)!;
    const now = Date.now();
    await webhook(
      membershipEvent('organizationMembership.deleted', { ...membership, updatedAt: now }, now),
    );
    expect(await closed).toBe(4403);
    // and a new upgrade is refused
    expect(await rawSocket(wsUrl, member)).toMatchObject({ refused: 403 });
  });
});
