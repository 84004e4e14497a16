import { eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { generateWebhookSecret } from '../../fixtures/auth/keys.ts';
import {
  deletedEvent,
  membershipEvent,
  organizationEvent,
  userEvent,
} from '../../fixtures/clerk/events.ts';
import { signedHeaders } from '../../load/webhook-sender.ts';
import { createApp } from '../../system/api/app.ts';
import { createSessionVerifier } from '../../system/auth/verifier.ts';
import { changeLogBounds, changesAfter } from '../../system/db/queries/changes.ts';
import {
  type ChangeRow,
  changeLog,
  deadLetters,
  type Membership,
  memberships,
  type Organization,
  organizations,
  type User,
  users,
  webhookDeliveries,
} from '../../system/db/schema.ts';
import { replayDeadLetter } from '../../system/sync/dead-letters.ts';
import { createWebhookIntake } from '../../system/sync/intake.ts';
import { pruneSyncTables } from '../../system/sync/retention.ts';
import { createWebhookVerifier } from '../../system/sync/verify.ts';
import { earlyAnswer, repeatedStream } from '../support/early-answer.ts';
import { BACKENDS, startTestApp, type TestContext, testKeys } from '../support/harness.ts';
import { startWorkerTestApp } from '../support/worker.ts';

let seq = 0;
const uid = (prefix: string) => `${prefix}_t${Date.now().toString(36)}${(seq++).toString(36)}x`;
const T0 = Date.UTC(2025, 5, 1);

const user = (id: string, updatedAt: number, firstName = 'Ada'): User => ({
  id,
  email: `${id}@example.com`,
  firstName,
  lastName: 'Lovelace',
  imageUrl: null,
  publicMetadata: '{"plan":"pro"}',
  createdAt: T0,
  updatedAt,
  deletedAt: null,
});
const org = (id: string, updatedAt: number, name = 'Acme'): Organization => ({
  id,
  name,
  slug: id.toLowerCase(),
  imageUrl: null,
  publicMetadata: '{}',
  createdAt: T0,
  updatedAt,
  deletedAt: null,
});
const membership = (
  id: string,
  orgId: string,
  userId: string,
  updatedAt: number,
  role: 'admin' | 'member' = 'member',
): Membership => ({
  id,
  orgId,
  userId,
  role,
  createdAt: T0,
  updatedAt,
  deletedAt: null,
});

describe.each([...BACKENDS, 'workerd'] as const)('POST /webhooks/clerk on %s', (backend) => {
  let t: TestContext;
  beforeAll(async () => {
    t = backend === 'workerd' ? await startWorkerTestApp() : await startTestApp(backend);
  });
  afterAll(() => t?.close());

  const post = (body: string, headers: Record<string, string>, app = t.app) =>
    app.request('/webhooks/clerk', { method: 'POST', headers, body });
  const deliver = async (event: object, svixId = uid('msg'), secret = t.webhookSecret) => {
    const body = JSON.stringify(event);
    const res = await post(body, signedHeaders(secret, svixId, body));
    return {
      res,
      status: res.status,
      body: (await res.json()) as { status?: string; error?: { code: string } },
    };
  };
  const userRow = async (id: string) =>
    (await t.database.db.select().from(users).where(eq(users.id, id)))[0];
  const deliveryCount = async (svixId: string) =>
    (
      await t.database.db
        .select()
        .from(webhookDeliveries)
        .where(eq(webhookDeliveries.svixId, svixId))
    ).length;
  const changesFor = async (entityId: string) =>
    t.database.db.select().from(changeLog).where(eq(changeLog.entityId, entityId));

  it('applies a signed user.created after commit', async () => {
    const id = uid('user');
    const { status, body } = await deliver(userEvent('user.created', user(id, T0), T0));
    expect(status).toBe(200);
    expect(body.status).toBe('applied');
    expect(await userRow(id)).toMatchObject({
      email: `${id}@example.com`,
      firstName: 'Ada',
      deletedAt: null,
    });
  });

  describe('signature checks: 400, nothing written', () => {
    const refused = async (body: string, headers: Record<string, string>, svixId: string) => {
      const res = await post(body, headers);
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe(
        'invalid_signature',
      );
      expect(await deliveryCount(svixId)).toBe(0);
    };
    const fresh = () => {
      const id = uid('user');
      const svixId = uid('msg');
      const body = JSON.stringify(userEvent('user.created', user(id, T0), T0));
      return { id, svixId, body, headers: signedHeaders(t.webhookSecret, svixId, body) };
    };

    it('missing svix headers', async () => {
      const { svixId, body, headers } = fresh();
      for (const missing of ['svix-id', 'svix-timestamp', 'svix-signature']) {
        const partial = { ...headers };
        delete partial[missing];
        await refused(body, partial, svixId);
      }
    });

    it('a body changed by one byte', async () => {
      const { id, svixId, body, headers } = fresh();
      await refused(body.replace('"Ada"', '"Adb"'), headers, svixId);
      expect(await userRow(id)).toBeUndefined();
    });

    it('the wrong secret', async () => {
      const { svixId, body } = fresh();
      await refused(body, signedHeaders(generateWebhookSecret(), svixId, body), svixId);
    });

    it('a timestamp 6 minutes old or ahead, or garbage', async () => {
      const { svixId, body } = fresh();
      for (const offset of [-6 * 60_000, 6 * 60_000]) {
        await refused(
          body,
          signedHeaders(t.webhookSecret, svixId, body, new Date(Date.now() + offset)),
          svixId,
        );
      }
      await refused(
        body,
        { ...signedHeaders(t.webhookSecret, svixId, body), 'svix-timestamp': 'yesterday' },
        svixId,
      );
    });

    it('accepts several signatures when one is valid (rotation on the sender side)', async () => {
      const { id, svixId, body, headers } = fresh();
      const other = signedHeaders(generateWebhookSecret(), svixId, body)['svix-signature'];
      const res = await post(body, {
        ...headers,
        'svix-signature': `${other} ${headers['svix-signature']}`,
      });
      expect(res.status).toBe(200);
      expect((await userRow(id))?.id).toBe(id);
    });

    it('accepts the old and the new secret during rotation (receiver side)', async () => {
      const oldSecret = generateWebhookSecret();
      const rotating = createApp({
        database: t.database,
        sessions: createSessionVerifier({ jwtKey: testKeys().publicKey }),
        webhooks: {
          intake: createWebhookIntake({
            database: t.database,
            verify: createWebhookVerifier([oldSecret, t.webhookSecret]),
            onCommitted: () => {},
          }),
          bodyLimitBytes: 65536,
        },
      });
      for (const secret of [oldSecret, t.webhookSecret]) {
        const id = uid('user');
        const svixId = uid('msg');
        const body = JSON.stringify(userEvent('user.created', user(id, T0), T0));
        const res = await post(body, signedHeaders(secret, svixId, body), rotating);
        expect(res.status).toBe(200);
      }
    });
  });

  describe('exactly once in effect', () => {
    it('an exact replay is 2xx and changes nothing', async () => {
      const o = uid('org');
      const svixId = uid('msg');
      const event = organizationEvent('organization.created', org(o, T0), T0);
      expect((await deliver(event, svixId)).body.status).toBe('applied');
      expect((await deliver(event, svixId)).body.status).toBe('duplicate');
      expect(await changesFor(o)).toHaveLength(1);
    });

    it('the same event twice concurrently: one applies, one is a duplicate', async () => {
      const o = uid('org');
      const svixId = uid('msg');
      const event = organizationEvent('organization.created', org(o, T0), T0);
      const results = await Promise.all(Array.from({ length: 4 }, () => deliver(event, svixId)));
      expect(results.map((r) => r.status)).toEqual([200, 200, 200, 200]);
      expect(results.map((r) => r.body.status).sort()).toEqual([
        'applied',
        'duplicate',
        'duplicate',
        'duplicate',
      ]);
      expect(await changesFor(o)).toHaveLength(1);
    });
  });

  describe('ordering: the end state equals in-order delivery', () => {
    it('membership before its org and user', async () => {
      const [o, u, m] = [uid('org'), uid('user'), uid('orgmem')];
      await deliver(
        membershipEvent(
          'organizationMembership.created',
          membership(m, o, u, T0 + 2, 'admin'),
          T0 + 2,
        ),
      );
      await deliver(userEvent('user.created', user(u, T0 + 1), T0 + 1));
      await deliver(organizationEvent('organization.created', org(o, T0), T0));
      const [row] = await t.database.db.select().from(memberships).where(eq(memberships.id, m));
      expect(row).toMatchObject({ orgId: o, userId: u, role: 'admin', deletedAt: null });
      expect((await userRow(u))?.deletedAt).toBeNull();
    });

    it('two updates arriving newest-first keep the newest', async () => {
      const u = uid('user');
      await deliver(userEvent('user.created', user(u, T0), T0));
      expect(
        (await deliver(userEvent('user.updated', user(u, T0 + 20, 'Newest'), T0 + 20))).body.status,
      ).toBe('applied');
      expect(
        (await deliver(userEvent('user.updated', user(u, T0 + 10, 'Older'), T0 + 10))).body.status,
      ).toBe('stale');
      expect((await userRow(u))?.firstName).toBe('Newest');
    });

    it('an update after a delete cannot resurrect the user', async () => {
      const u = uid('user');
      await deliver(userEvent('user.created', user(u, T0), T0));
      await deliver(deletedEvent('user.deleted', u, T0 + 50));
      const late = await deliver(userEvent('user.updated', user(u, T0 + 100, 'Zombie'), T0 + 100));
      expect(late.body.status).toBe('stale');
      const row = await userRow(u);
      expect(row?.deletedAt).not.toBeNull();
      expect(row?.firstName).toBe('Ada');
    });

    it('a delete before the create leaves a tombstone the create cannot undo', async () => {
      const o = uid('org');
      await deliver(deletedEvent('organization.deleted', o, T0 + 50));
      await deliver(organizationEvent('organization.created', org(o, T0), T0));
      const [row] = await t.database.db.select().from(organizations).where(eq(organizations.id, o));
      expect(row?.deletedAt).not.toBeNull();
    });

    it('deleting a user ends their memberships, and a late membership stays ended', async () => {
      const [o, u, m1, m2] = [uid('org'), uid('user'), uid('orgmem'), uid('orgmem')];
      await deliver(organizationEvent('organization.created', org(o, T0), T0));
      await deliver(userEvent('user.created', user(u, T0), T0));
      await deliver(
        membershipEvent('organizationMembership.created', membership(m1, o, u, T0 + 1), T0 + 1),
      );
      await deliver(deletedEvent('user.deleted', u, T0 + 100));
      await deliver(
        membershipEvent(
          'organizationMembership.created',
          membership(m2, uid('org'), u, T0 + 2),
          T0 + 2,
        ),
      );
      const rows = await t.database.db.select().from(memberships).where(eq(memberships.userId, u));
      expect(rows).toHaveLength(2);
      expect(rows.every((r) => r.deletedAt !== null)).toBe(true);
    });

    it('maps legacy role names', async () => {
      const [o, a, b] = [uid('org'), uid('orgmem'), uid('orgmem')];
      await deliver(
        membershipEvent(
          'organizationMembership.created',
          membership(a, o, uid('user'), T0, 'admin'),
          T0,
          { legacyRole: true },
        ),
      );
      await deliver(
        membershipEvent(
          'organizationMembership.created',
          membership(b, o, uid('user'), T0, 'member'),
          T0,
          { legacyRole: true },
        ),
      );
      const rows = await t.database.db.select().from(memberships).where(eq(memberships.orgId, o));
      expect(Object.fromEntries(rows.map((r) => [r.id, r.role]))).toEqual({
        [a]: 'admin',
        [b]: 'member',
      });
    });
  });

  describe('unusable and unknown payloads', () => {
    it('an unhandled event type is 2xx and recorded as ignored', async () => {
      const svixId = uid('msg');
      const { status, body } = await deliver(
        { type: 'session.created', object: 'event', data: { id: 'sess_1' } },
        svixId,
      );
      expect(status).toBe(200);
      expect(body.status).toBe('ignored');
      const [row] = await t.database.db
        .select()
        .from(webhookDeliveries)
        .where(eq(webhookDeliveries.svixId, svixId));
      expect(row?.outcome).toBe('ignored');
    });

    it('signed malformed JSON, or a payload missing type/data/id, becomes a dead letter (never 500)', async () => {
      const bodies = [
        '{"type": "user.created", "data": ',
        JSON.stringify({ data: {} }),
        JSON.stringify({ type: 'user.created' }),
        JSON.stringify({ type: 'user.created', data: [] }),
        JSON.stringify({ type: 'user.created', data: 'user_x' }),
        JSON.stringify({ type: 'user.created', data: null }),
        JSON.stringify({ type: 'user.deleted', data: { deleted: true } }),
        JSON.stringify({ type: 'user.created', data: { id: 'user_x', created_at: 'yesterday' } }),
      ];
      for (const body of bodies) {
        const svixId = uid('msg');
        const res = await post(body, signedHeaders(t.webhookSecret, svixId, body));
        expect(res.status, body).toBe(200);
        expect(((await res.json()) as { status: string }).status).toBe('dead_letter');
        const [letter] = await t.database.db
          .select()
          .from(deadLetters)
          .where(eq(deadLetters.svixId, svixId));
        expect(letter?.payload).toBe(body);
        expect(letter?.reason.length).toBeGreaterThan(0);
      }
    });

    it('a dead letter can be replayed once its cause is fixed, and applies once', async () => {
      const u = uid('user');
      const good = JSON.stringify(userEvent('user.created', user(u, T0), T0));
      // as if an older handler had refused this payload
      const [letter] = await t.database.db
        .insert(deadLetters)
        .values({
          svixId: uid('msg'),
          eventType: 'user.created',
          reason: 'old bug',
          payload: good,
          receivedAt: T0,
        })
        .returning();
      expect(await replayDeadLetter(t.database, letter!.id)).toEqual({
        ok: true,
        outcome: 'applied',
      });
      expect(await replayDeadLetter(t.database, letter!.id)).toEqual({
        ok: true,
        outcome: 'duplicate',
      });
      expect((await userRow(u))?.id).toBe(u);
      expect(await changesFor(u)).toHaveLength(0); // no memberships yet, so no org to tell
      const [after] = await t.database.db
        .select()
        .from(deadLetters)
        .where(eq(deadLetters.id, letter!.id));
      expect(after?.replayedAt).not.toBeNull();
      const still = await t.database.db
        .insert(deadLetters)
        .values({
          svixId: uid('msg'),
          eventType: null,
          reason: 'bad json',
          payload: '{',
          receivedAt: T0,
        })
        .returning();
      expect(await replayDeadLetter(t.database, still[0]!.id)).toMatchObject({ ok: false });
    });

    it('a body over the limit is a 413 before any signature work, with Content-Length or chunked', async () => {
      const svixId = uid('msg');
      const big = JSON.stringify({ type: 'user.created', data: { pad: 'x'.repeat(300 * 1024) } });
      const declared = await earlyAnswer(() =>
        post(big, signedHeaders(t.webhookSecret, svixId, big)),
      );
      expect(declared.status).toBe(413);
      const chunked = await earlyAnswer(() =>
        t.app.request('/webhooks/clerk', {
          method: 'POST',
          headers: {
            ...signedHeaders(t.webhookSecret, svixId, big),
            'transfer-encoding': 'chunked',
          },
          body: repeatedStream(big.slice(0, 10_000), 40),
          // @ts-expect-error Node's fetch needs this for a streaming body
          duplex: 'half',
        }),
      );
      expect(chunked.status).toBe(413);
      expect(await deliveryCount(svixId)).toBe(0);
    });
  });

  describe('failures: 5xx, nothing half-applied, redelivery applies whole', () => {
    it('a handler failing midway leaves nothing visible', async () => {
      const [o, u, m] = [uid('org'), uid('user'), uid('orgmem')];
      await deliver(organizationEvent('organization.created', org(o, T0), T0));
      await deliver(userEvent('user.created', user(u, T0), T0));
      const svixId = uid('msg');
      const event = membershipEvent(
        'organizationMembership.created',
        membership(m, o, u, T0 + 1),
        T0 + 1,
      );
      // the change-log append is the last statement of the apply batch: make it fail
      await t.database.client.execute(`CREATE TRIGGER fail_${m} BEFORE INSERT ON change_log
        WHEN NEW.entity_id = '${m}' BEGIN SELECT RAISE(ABORT, 'injected failure'); END`);
      const failed = await deliver(event, svixId);
      expect(failed.status).toBe(503);
      expect(failed.res.headers.get('retry-after')).not.toBeNull();
      expect(await deliveryCount(svixId)).toBe(0);
      expect(
        await t.database.db.select().from(memberships).where(eq(memberships.id, m)),
      ).toHaveLength(0);
      await t.database.client.execute(`DROP TRIGGER fail_${m}`);
      const retried = await deliver(event, svixId);
      expect(retried.body.status).toBe('applied');
      expect(await changesFor(m)).toHaveLength(1);
    });
  });

  describe('change log', () => {
    it('every applied change appends one row with the request trace context, in the same commit', async () => {
      const [o, u, m] = [uid('org'), uid('user'), uid('orgmem')];
      const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
      await deliver(organizationEvent('organization.created', org(o, T0), T0));
      await deliver(userEvent('user.created', user(u, T0), T0));
      const body = JSON.stringify(
        membershipEvent(
          'organizationMembership.created',
          membership(m, o, u, T0 + 1, 'admin'),
          T0 + 1,
        ),
      );
      const svixId = uid('msg');
      await post(body, { ...signedHeaders(t.webhookSecret, svixId, body), traceparent });
      await deliver(userEvent('user.updated', user(u, T0 + 5, 'Grace'), T0 + 5));
      const rows = await t.database.db.select().from(changeLog).where(eq(changeLog.orgId, o));
      expect(rows.map((r) => [r.entity, r.entityId, r.op])).toEqual([
        ['organization', o, 'upsert'],
        ['membership', m, 'upsert'],
        ['user', u, 'upsert'],
      ]);
      expect(rows[1]?.traceContext).toBe(traceparent);
      expect(JSON.parse(rows[1]!.data)).toEqual({ userId: u, role: 'admin' });
      expect(rows[2]?.version).toBe(T0 + 5);
    });

    it('project writes append to the change log and signal the publisher', async () => {
      const before = t.commits();
      const { orgA, adminA } = await import('../support/people.ts').then((p) =>
        p.castFrom(t.fixture),
      );
      const token = await t.token({ userId: adminA.id, orgId: orgA.id, role: 'admin' });
      const res = await t.call(`/api/orgs/${orgA.id}/projects`, {
        token,
        method: 'POST',
        json: { name: 'Logged' },
      });
      const project = (await res.json()) as { id: string };
      await t.call(`/api/orgs/${orgA.id}/projects/${project.id}`, { token, method: 'DELETE' });
      const rows = await changesFor(project.id);
      expect(rows.map((r) => [r.op, r.version, r.orgId])).toEqual([
        ['upsert', 1, orgA.id],
        ['delete', 2, orgA.id],
      ]);
      expect(t.commits() - before).toBe(2);
    });
  });

  it('prunes delivery records after the retention, never before Svix stops retrying', async () => {
    const svixId = uid('msg');
    await deliver(userEvent('user.created', user(uid('user'), T0), T0), svixId);
    const now = Date.now();
    await pruneSyncTables(
      t.database,
      { deliveriesMs: 1000, changeLogMs: 365 * 86_400_000 },
      now + 3600_000,
    );
    expect(await deliveryCount(svixId)).toBe(1); // 27 h floor
    await pruneSyncTables(
      t.database,
      { deliveriesMs: 1000, changeLogMs: 365 * 86_400_000 },
      now + 28 * 3600_000,
    );
    expect(await deliveryCount(svixId)).toBe(0);
    const remaining = await t.database.db.select({ n: sql<number>`count(*)` }).from(changeLog);
    expect(remaining[0]!.n).toBeGreaterThan(0);
  });
});

describe.each(BACKENDS)('the rows a write hands to the publisher, on %s', (backend) => {
  let t: TestContext;
  /** What the app's project writes hand over, one array per commit. */
  const fromWrites: ChangeRow[][] = [];
  beforeAll(async () => {
    t = await startTestApp(backend, {
      onCommitted: (rows) => {
        fromWrites.push([...rows]);
      },
    });
  });
  afterAll(() => t?.close());

  it('a project write hands over exactly the row it appended', async () => {
    const { orgA, adminA } = await import('../support/people.ts').then((p) =>
      p.castFrom(t.fixture),
    );
    const token = await t.token({ userId: adminA.id, orgId: orgA.id, role: 'admin' });
    const start = (await changeLogBounds(t.database.db)).newest;
    const res = await t.call(`/api/orgs/${orgA.id}/projects`, {
      token,
      method: 'POST',
      json: { name: 'Handed' },
    });
    const { id } = (await res.json()) as { id: string };
    const path = `/api/orgs/${orgA.id}/projects/${id}`;
    await t.call(path, { token, method: 'PATCH', json: { status: 'archived' } });
    await t.call(path, { token, method: 'DELETE' });
    const log = await changesAfter(t.database.db, start, 100);
    expect(log.map((r) => r.op)).toEqual(['upsert', 'upsert', 'delete']);
    expect(fromWrites).toEqual(log.map((row) => [row]));
  });

  it('parses each delivery once: the event reads what the signature check parsed', async () => {
    const intake = createWebhookIntake({
      database: t.database,
      verify: createWebhookVerifier([t.webhookSecret]),
      onCommitted: () => {},
    });
    const body = JSON.stringify(userEvent('user.created', user(uid('user'), T0), T0));
    const headers = new Headers(signedHeaders(t.webhookSecret, uid('msg'), body));
    const parse = vi.spyOn(JSON, 'parse');
    try {
      expect((await intake(body, headers)).status).toBe('applied');
      expect(parse.mock.calls.filter(([text]) => text === body)).toHaveLength(1);
    } finally {
      parse.mockRestore();
    }
  });

  it('are exactly the rows its commit appended to the log, also under a group commit', async () => {
    const handed: ChangeRow[][] = [];
    const intake = createWebhookIntake({
      database: t.database,
      verify: createWebhookVerifier([t.webhookSecret]),
      onCommitted: (rows) => {
        handed.push([...rows]);
      },
    });
    const receive = (event: object, svixId = uid('msg')) => {
      const body = JSON.stringify(event);
      return intake(body, new Headers(signedHeaders(t.webhookSecret, svixId, body)));
    };
    const start = (await changeLogBounds(t.database.db)).newest;
    const [o, u, m1, m2] = [uid('org'), uid('user'), uid('orgmem'), uid('orgmem')];
    const o2 = uid('org');
    await Promise.all([
      receive(organizationEvent('organization.created', org(o, T0), T0)),
      receive(organizationEvent('organization.created', org(o2, T0), T0)),
      receive(userEvent('user.created', user(u, T0), T0)),
    ]);
    await Promise.all([
      receive(
        membershipEvent('organizationMembership.created', membership(m1, o, u, T0 + 1), T0 + 1),
      ),
      receive(
        membershipEvent('organizationMembership.created', membership(m2, o2, u, T0 + 1), T0 + 1),
      ),
    ]);
    // one profile change, one log row per org the user is in; then a stale one: no rows
    const together = await Promise.all([
      receive(userEvent('user.updated', user(u, T0 + 5, 'Grace'), T0 + 5)),
      receive(userEvent('user.updated', user(u, T0 + 2, 'Old'), T0 + 2)),
    ]);
    expect(together.map((r) => r.status).sort()).toEqual(['applied', 'stale']);
    const log = await changesAfter(t.database.db, start, 100);
    expect(log).toHaveLength(6);
    expect(handed.flat().sort((a, b) => a.id - b.id)).toEqual(log);
    // a new user is in no org yet: applied, nothing to log
    expect(handed.map((rows) => rows.length).sort()).toEqual([0, 1, 1, 1, 1, 2]);
    for (const rows of handed)
      expect(rows.map((r) => r.id)).toEqual([...rows.map((r) => r.id)].sort((a, b) => a - b));
  });
});
