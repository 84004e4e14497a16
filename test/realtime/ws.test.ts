import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { WebSocket } from 'ws';
import { userEvent } from '../../fixtures/clerk/events.ts';
import { generateFixture } from '../../fixtures/seed/generate.ts';
import { loadFixture } from '../../fixtures/seed/load.ts';
import { signedHeaders } from '../../load/webhook-sender.ts';
import { changeLog } from '../../system/db/schema.ts';
import { type Cast, castFrom } from '../support/people.ts';
import {
  rawSocket,
  recordingClient,
  startTestServer,
  type TestServer,
  waitFor,
} from '../support/server.ts';

type Opened = { ws: WebSocket; messages: Array<Record<string, unknown>> };
const opened = (r: Awaited<ReturnType<typeof rawSocket>>): Opened => {
  if ('refused' in r) throw new Error(`upgrade refused with ${r.refused}`);
  return r;
};
const closeCode = (ws: WebSocket) =>
  new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));

describe('realtime over a real server', () => {
  let server: TestServer & { cleanup(): Promise<void> };
  let cast: Cast;
  let adminToken: string;
  const fixture = generateFixture('small');
  const sockets: WebSocket[] = [];
  const clients: Array<{ close(): void }> = [];

  beforeAll(async () => {
    server = await startTestServer({
      WS_MAX_CONNECTIONS_PER_USER: '3',
      WS_MAX_FRAME_BYTES: '4096',
    });
    await loadFixture(server.database, fixture);
    cast = castFrom(fixture);
    adminToken = await server.token({ userId: cast.adminA.id, orgId: cast.orgA.id, role: 'admin' });
  });
  afterEach(() => {
    for (const ws of sockets.splice(0)) ws.terminate();
    for (const c of clients.splice(0)) c.close();
  });
  afterAll(() => server?.cleanup());

  const open = async (token: string | null = adminToken, headers: Record<string, string> = {}) => {
    const r = opened(await rawSocket(server.wsUrl, token, headers));
    sockets.push(r.ws);
    await waitFor(() => r.messages.some((m) => m.type === 'hello'), 5000, 'hello');
    return r;
  };
  const createProject = async (name: string, token = adminToken, orgId = cast.orgA.id) => {
    const res = await fetch(`${server.url}/api/orgs/${orgId}/projects`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name }),
    });
    expect(res.status).toBe(201);
    return (await res.json()) as { id: string };
  };

  describe('refused before upgrade', () => {
    it('without a token: 401', async () => {
      expect(await rawSocket(server.wsUrl, null)).toMatchObject({ refused: 401 });
    });
    it('with a bad token: 401, no detail', async () => {
      const r = await rawSocket(server.wsUrl, 'a.b.c');
      expect(r).toMatchObject({ refused: 401 });
      expect((r as { body: string }).body).not.toMatch(/signature|expired/);
    });
    it('from a disallowed origin: 403', async () => {
      expect(
        await rawSocket(server.wsUrl, adminToken, { origin: 'https://evil.example' }),
      ).toMatchObject({ refused: 403 });
    });
    it('from an allowed origin: accepted', async () => {
      const r = opened(
        await rawSocket(server.wsUrl, adminToken, { origin: 'http://localhost:5173' }),
      );
      sockets.push(r.ws);
    });
    it('without the dataflow.v1 subprotocol: 400', async () => {
      expect(await rawSocket(server.wsUrl, adminToken, {}, ['other'])).toMatchObject({
        refused: 400,
      });
    });
    it('without an active org: 403', async () => {
      const token = await server.token({ userId: cast.adminA.id });
      expect(await rawSocket(server.wsUrl, token)).toMatchObject({ refused: 403 });
    });
    it('for an org the user is not a member of: 403', async () => {
      const token = await server.token({ userId: cast.strangerB.id, orgId: cast.orgA.id });
      expect(await rawSocket(server.wsUrl, token)).toMatchObject({ refused: 403 });
    });
    it('over the per-user connection cap: 429', async () => {
      await open();
      await open();
      await open();
      expect(await rawSocket(server.wsUrl, adminToken)).toMatchObject({ refused: 429 });
    });
    it('a garbage resume position: 400', async () => {
      expect(await rawSocket(`${server.wsUrl}?lastEventId=abc`, adminToken)).toMatchObject({
        refused: 400,
      });
      expect(await rawSocket(`${server.wsUrl}?lastEventId=-1`, adminToken)).toMatchObject({
        refused: 400,
      });
    });
    it('an unknown path: 404', async () => {
      expect(await rawSocket(server.wsUrl.replace('/ws', '/other'), adminToken)).toMatchObject({
        refused: 404,
      });
    });
  });

  it('pushes committed changes of its own org only, in order, with trace context', async () => {
    const a = await open();
    const strangerToken = await server.token({ userId: cast.strangerB.id, orgId: cast.orgB.id });
    const b = await open(strangerToken);
    const p1 = await createProject('one');
    const p2 = await createProject('two');
    await waitFor(() => a.messages.filter((m) => m.type === 'change').length >= 2, 5000, 'changes');
    const changes = a.messages.filter((m) => m.type === 'change');
    expect(changes.map((m) => m.entityId)).toEqual([p1.id, p2.id]);
    expect(changes[0]).toMatchObject({
      entity: 'project',
      op: 'upsert',
      version: 1,
      data: { name: 'one', status: 'active' },
    });
    expect((changes[1]!.id as number) > (changes[0]!.id as number)).toBe(true);
    expect(b.messages.filter((m) => m.type === 'change')).toHaveLength(0);

    // a webhook change carries the trace context of the webhook request
    const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    const body = JSON.stringify(
      userEvent(
        'user.updated',
        { ...cast.adminA, firstName: 'Pushed', updatedAt: Date.now() },
        Date.now(),
      ),
    );
    const res = await fetch(`${server.url}/webhooks/clerk`, {
      method: 'POST',
      headers: {
        ...signedHeaders(server.webhookSecret, `msg_push_${Date.now()}`, body),
        traceparent,
      },
      body,
    });
    expect(res.status).toBe(200);
    await waitFor(() => a.messages.some((m) => m.entity === 'user'), 5000, 'user change');
    expect(a.messages.find((m) => m.entity === 'user')).toMatchObject({
      entityId: cast.adminA.id,
      traceparent,
    });
  });

  it('refuses to subscribe to another org, and sends it nothing', async () => {
    const a = await open();
    a.ws.send(JSON.stringify({ type: 'subscribe', orgId: cast.orgB.id }));
    await waitFor(() => a.messages.some((m) => m.type === 'error'), 5000, 'error frame');
    expect(a.messages.find((m) => m.type === 'error')).toMatchObject({ code: 'forbidden' });
    const strangerToken = await server.token({ userId: cast.strangerB.id, orgId: cast.orgB.id });
    await createProject('b-only', strangerToken, cast.orgB.id);
    await new Promise((r) => setTimeout(r, 300));
    expect(a.messages.filter((m) => m.type === 'change')).toHaveLength(0);
    a.ws.send(JSON.stringify({ type: 'subscribe', orgId: cast.orgA.id }));
    await waitFor(() => a.messages.some((m) => m.type === 'subscribed'), 5000, 'subscribed');
  });

  it('answers bad frames with error frames; an oversized frame closes 1009; the server lives on', async () => {
    const a = await open();
    a.ws.send('{not json');
    a.ws.send(JSON.stringify({ type: 'explode' }));
    await waitFor(() => a.messages.filter((m) => m.type === 'error').length >= 2, 5000, 'errors');
    expect(a.messages.filter((m) => m.type === 'error').map((m) => m.code)).toEqual([
      'invalid_json',
      'unknown_op',
    ]);
    const closed = closeCode(a.ws);
    a.ws.send(JSON.stringify({ type: 'ping', pad: 'x'.repeat(8000) }));
    expect(await closed).toBe(1009);
    expect((await fetch(`${server.url}/health`)).status).toBe(200);
    await open();
  });

  describe('resume', () => {
    it('replays what was missed, in order, without duplicates', async () => {
      const first = recordingClient({ url: server.wsUrl, token: () => adminToken });
      clients.push(first);
      await first.ready();
      await createProject('seen');
      await waitFor(() => first.changes.length === 1, 5000, 'first change');
      const last = first.lastEventId();
      first.close();
      const missed = [await createProject('missed-1'), await createProject('missed-2')];
      const second = recordingClient({
        url: server.wsUrl,
        token: () => adminToken,
        lastEventId: last,
      });
      clients.push(second);
      await second.ready();
      await createProject('live');
      await waitFor(() => second.changes.length === 3, 5000, 'replay + live');
      expect(second.resets).toEqual([]);
      const rows = await server.database.db.select().from(changeLog);
      const byId = new Map(rows.map((r) => [r.id, r.entityId]));
      expect(second.changes.slice(0, 2).map((id) => byId.get(id))).toEqual(missed.map((p) => p.id));
      expect([...second.changes].sort((x, y) => x - y)).toEqual(second.changes);
      expect(new Set(second.changes).size).toBe(3);
    });

    it('an unknown, garbage or other org id gets reset', async () => {
      const strangerToken = await server.token({ userId: cast.strangerB.id, orgId: cast.orgB.id });
      await createProject('b-event', strangerToken, cast.orgB.id);
      const rows = await server.database.db.select().from(changeLog);
      const otherOrgId = rows.filter((r) => r.orgId === cast.orgB.id).at(-1)!.id;
      const newest = rows.at(-1)!.id;
      for (const lastEventId of [otherOrgId, newest + 1000]) {
        const a = await open();
        a.ws.send(JSON.stringify({ type: 'resume', lastEventId }));
        await waitFor(() => a.messages.some((m) => m.type === 'reset'), 5000, 'reset');
        expect(a.messages.find((m) => m.type === 'reset')).toMatchObject({ reason: 'unknown' });
        a.ws.terminate();
      }
      const a = await open();
      a.ws.send(JSON.stringify({ type: 'resume', lastEventId: 'garbage' }));
      await waitFor(() => a.messages.some((m) => m.type === 'error'), 5000, 'error');
    });

    it('an id older than the retained log gets reset (too_old)', async () => {
      await createProject('old');
      const rows = await server.database.db.select().from(changeLog);
      const oldest = rows[0]!.id;
      // prune the oldest rows as the retention job would
      await server.database.client.execute({
        sql: 'DELETE FROM change_log WHERE id <= ?',
        args: [oldest + 1],
      });
      const a = await open();
      a.ws.send(JSON.stringify({ type: 'resume', lastEventId: oldest }));
      await waitFor(() => a.messages.some((m) => m.type === 'reset'), 5000, 'reset');
      expect(a.messages.find((m) => m.type === 'reset')).toMatchObject({ reason: 'too_old' });
    });
  });
});

describe('heartbeat', () => {
  it('closes a half-open connection that stops answering', async () => {
    const server = await startTestServer({ WS_HEARTBEAT_MS: '150' });
    try {
      const fixture = generateFixture('small');
      await loadFixture(server.database, fixture);
      const { adminA, orgA } = castFrom(fixture);
      const token = await server.token({ userId: adminA.id, orgId: orgA.id });
      // a raw socket that never answers pings, like a peer that vanished
      const silent = opened(await rawSocket(server.wsUrl, token));
      const started = Date.now();
      expect(await closeCode(silent.ws)).toBe(4408);
      expect(Date.now() - started).toBeLessThan(3000);
      // the reconnecting client answers pings and stays connected
      const live = recordingClient({ url: server.wsUrl, token: () => token });
      await live.ready();
      await new Promise((r) => setTimeout(r, 700));
      expect(live.statuses.filter((s) => s === 'closed')).toHaveLength(0);
      live.close();
    } finally {
      await server.cleanup();
    }
  });
});

describe('hub restart', () => {
  it('clients reconnect with backoff, resume, and lose nothing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dataflow-restart-'));
    const env = { DATABASE_URL: `file:${join(dir, 'app.db')}` };
    let server = await startTestServer(env);
    try {
      const fixture = generateFixture('small');
      await loadFixture(server.database, fixture);
      const { adminA, orgA } = castFrom(fixture);
      const token = await server.token({ userId: adminA.id, orgId: orgA.id, role: 'admin' });
      const port = new URL(server.url).port;
      const client = recordingClient({ url: server.wsUrl, token: () => token });
      await client.ready();
      const write = async (base: string, name: string) => {
        const res = await fetch(`${base}/api/orgs/${orgA.id}/projects`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: JSON.stringify({ name }),
        });
        expect(res.status).toBe(201);
      };
      await write(server.url, 'before');
      await waitFor(() => client.changes.length === 1, 5000, 'first change');

      await server.close(); // 1012 to every client
      // while the hub is down, another instance on the same database takes writes
      const other = await startTestServer({
        ...env,
        CLERK_WEBHOOK_SIGNING_SECRET: server.webhookSecret,
      });
      await write(other.url, 'during-1');
      await write(other.url, 'during-2');
      await other.close();

      server = await startTestServer({
        ...env,
        PORT: port,
        CLERK_WEBHOOK_SIGNING_SECRET: server.webhookSecret,
      });
      await write(server.url, 'after');
      await waitFor(() => client.changes.length === 4, 10_000, 'all four changes');
      expect(client.resets).toEqual([]);
      expect(client.statuses).toContain('closed');
      const ids = await server.database.db.select().from(changeLog);
      expect(client.changes).toEqual(ids.filter((r) => r.orgId === orgA.id).map((r) => r.id));
      client.close();
    } finally {
      await server.cleanup();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
