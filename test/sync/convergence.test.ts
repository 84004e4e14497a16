import { eq } from 'drizzle-orm';
import { afterAll, describe, expect, it } from 'vitest';
import { buildHistory, type History, planDeliveries } from '../../fixtures/clerk/storm.ts';
import { type SqldServer, startSqld } from '../../load/infra/sqld.ts';
import { sendDeliveries } from '../../load/webhook-sender.ts';
import type { Database } from '../../system/db/database.ts';
import { changeLog, memberships, organizations, users } from '../../system/db/schema.ts';
import { startTestApp } from '../support/harness.ts';
import { recordingClient, startTestServer, waitFor } from '../support/server.ts';

/**
 * 1,000 Clerk events, each delivered three times, shuffled, sent concurrently to the
 * real server: the database must equal one in-order delivery, and every change must
 * reach every connected client exactly once, in order.
 */

type Snapshot = Record<string, string>;

/** Entities of the history: live rows compared field by field, tombstones as "deleted". */
async function snapshot(database: Database, history: History): Promise<Snapshot> {
  const out: Snapshot = {};
  const db = database.db;
  const strip = <T extends { deletedAt: number | null }>(row: T) =>
    row.deletedAt === null ? JSON.stringify({ ...row, deletedAt: null }) : 'deleted';
  for (const id of history.expected.users.keys()) {
    const [row] = await db.select().from(users).where(eq(users.id, id));
    out[id] = row ? strip(row) : 'missing';
  }
  for (const id of history.expected.organizations.keys()) {
    const [row] = await db.select().from(organizations).where(eq(organizations.id, id));
    out[id] = row ? strip(row) : 'missing';
  }
  for (const id of history.expected.memberships.keys()) {
    const [row] = await db.select().from(memberships).where(eq(memberships.id, id));
    out[id] = row ? strip(row) : 'missing';
  }
  return out;
}

describe.each(['file', 'sqld'] as const)('convergence on %s', (backend) => {
  let sqld: SqldServer | undefined;
  afterAll(async () => sqld?.stop());

  it('duplicated, shuffled, concurrent deliveries converge to in-order delivery', async () => {
    const history = buildHistory({ seed: 11, count: 1000 });

    // the truth: one in-order delivery into a fresh database
    const reference = await startTestApp('memory');
    for (const event of history.events) {
      const { signedHeaders } = await import('../../load/webhook-sender.ts');
      const res = await reference.app.request('/webhooks/clerk', {
        method: 'POST',
        headers: signedHeaders(reference.webhookSecret, event.svixId, event.body),
        body: event.body,
      });
      expect(res.status).toBe(200);
    }
    const expected = await snapshot(reference.database, history);
    await reference.close();
    // the history's own model agrees on who is live
    for (const [id, user] of history.expected.users) {
      expect(expected[id] === 'deleted', id).toBe(user.deletedAt !== null);
    }

    if (backend === 'sqld') sqld = await startSqld();
    const server = await startTestServer(sqld ? { DATABASE_URL: sqld.url } : {});
    try {
      // deliver the start of the history in order, up to a membership that lasts,
      // then connect two clients as that member
      const lasting = [...history.expected.memberships.values()].find(
        (m) =>
          m.deletedAt === null &&
          history.expected.users.get(m.userId)?.deletedAt === null &&
          history.expected.organizations.get(m.orgId)?.deletedAt === null,
      )!;
      const cut = history.events.findIndex((e) => e.body.includes(`"id":"${lasting.id}"`)) + 1;
      const head = { ...history, events: history.events.slice(0, cut) };
      const tail = { ...history, events: history.events.slice(cut) };
      const inOrder = await sendDeliveries(planDeliveries(head, { seed: 1 }), {
        url: server.url,
        secret: server.webhookSecret,
        concurrency: 1,
      });
      expect(inOrder.unexpected).toEqual([]);

      const token = await server.token({ userId: lasting.userId, orgId: lasting.orgId });
      const clients = [0, 1].map(() => recordingClient({ url: server.wsUrl, token: () => token }));
      await Promise.all(clients.map((c) => c.ready()));
      const from = clients.map((c) => c.lastEventId());

      const plan = planDeliveries(tail, { seed: 2, copies: 3, reorder: 1 });
      expect(plan.length).toBe(3 * tail.events.length);
      const storm = await sendDeliveries(plan, {
        url: server.url,
        secret: server.webhookSecret,
        concurrency: 16,
      });
      expect(storm.unexpected).toEqual([]);
      expect(storm.byOutcome.duplicate).toBeGreaterThanOrEqual(2 * tail.events.length);

      expect(await snapshot(server.database, history)).toEqual(expected);

      await server.publisher.drain();
      const logged = (
        await server.database.db.select().from(changeLog).where(eq(changeLog.orgId, lasting.orgId))
      ).map((r) => r.id);
      for (const [i, client] of clients.entries()) {
        const due = logged.filter((id) => id > from[i]!);
        await waitFor(() => client.changes.length >= due.length, 10_000, `client ${i} changes`);
        expect(client.changes).toEqual(due); // each once, in order, nothing missing
        expect(client.resets).toEqual([]);
        client.close();
      }
    } finally {
      await server.cleanup();
    }
  }, 120_000);
});
