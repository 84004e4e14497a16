import { rmSync } from 'node:fs';
import { WebSocket } from 'ws';
import { mintSessionToken } from '../../fixtures/auth/token.ts';
import { userEvent } from '../../fixtures/clerk/events.ts';
import { largestOrg } from '../../fixtures/seed/generate.ts';
import { loadFixture } from '../../fixtures/seed/load.ts';
import { startServerProcess } from '../../load/infra/server-process.ts';
import { signedHeaders } from '../../load/webhook-sender.ts';
import { openDatabase } from '../../system/db/client.ts';
import { runMigrations } from '../../system/db/migrate.ts';
import { connectRealtime, type WebSocketConstructor } from '../../system/realtime/client.ts';
import type { Figure } from '../results.ts';
import { type BenchSuite, checkAborted, percentileFigure, productionEnv } from './context.ts';

/**
 * WebSocket fan-out: N subscribed clients of one org (distinct members of the largest
 * org of the bench seed), pushes driven by signed Clerk webhooks at a fixed rate (open
 * model), delivery latency per message: client receipt time minus the event's
 * `updated_at`, which the sender stamps with its send time. The app is its own process
 * (production mode); the sender and the clients share this one.
 */
export const wsSuite: BenchSuite = {
  description:
    'WebSocket fan-out to one org: N clients, webhooks at a fixed rate; delivery latency per message',
  databases: ['file'],
  run: async (ctx) => {
    const { settings, setup } = ctx;
    const clientCount = settings.wsClients;
    const rate = settings.wsRate;
    const durationSec = settings.wsSec;
    const warmupSec = 1;
    const { org } = largestOrg(setup.fixture);
    const members = setup.fixture.memberships
      .filter((m) => m.orgId === org.id)
      .map((m) => m.userId);
    if (members.length < clientCount) {
      throw new Error(`the largest bench org has ${members.length} members; ${clientCount} asked`);
    }
    ctx.progress(`ws: ${clientCount} clients, ${rate} events/s, ${durationSec}s`);
    const dbFile = `.data/ws-fanout-${process.pid}.db`;
    const removeDb = () => {
      for (const suffix of ['', '-wal', '-shm']) rmSync(`${dbFile}${suffix}`, { force: true });
    };
    ctx.cleanups.push(removeDb);
    const database = await openDatabase({ url: `file:${dbFile}` });
    await runMigrations(database.db);
    await loadFixture(database, setup.fixture);
    database.close();
    const server = await startServerProcess(
      productionEnv(ctx, { DATABASE_URL: `file:${dbFile}`, DATAFLOW_PRESET: 'recommended' }),
    );
    ctx.cleanups.push(() => server.stop());

    const users = new Map(setup.fixture.users.map((u) => [u.id, u]));
    const latencies: number[] = [];
    let measuring = false;
    const wsUrl = `${server.url.replace('http', 'ws')}/ws`;
    const clients: Array<ReturnType<typeof connectRealtime>> = [];
    try {
      for (let i = 0; i < clientCount; i++) {
        const token = await mintSessionToken({
          privateKeyPem: setup.keys.privateKey,
          userId: members[i]!,
          orgId: org.id,
        });
        clients.push(
          connectRealtime({
            url: wsUrl,
            token: () => token,
            WebSocket: WebSocket as unknown as WebSocketConstructor,
            onChange: (change, at) => {
              if (measuring && change.entity === 'user') latencies.push(at - change.version);
            },
          }),
        );
      }
      await Promise.all(clients.map((c) => c.ready()));
      checkAborted(ctx);

      const total = Math.round(rate * (warmupSec + durationSec));
      const warmupEvents = Math.round(rate * warmupSec);
      const started = performance.now();
      const inflight: Array<Promise<void>> = [];
      let failures = 0;
      for (let i = 0; i < total; i++) {
        const wait = started + (i * 1000) / rate - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        if (i === warmupEvents) measuring = true;
        const user = users.get(members[i % members.length]!)!;
        const now = Date.now();
        const body = JSON.stringify(
          userEvent('user.updated', { ...user, firstName: `F${i}`, updatedAt: now }, now),
        );
        inflight.push(
          fetch(`${server.url}/webhooks/clerk`, {
            method: 'POST',
            headers: signedHeaders(ctx.webhookSecret, `msg_fanout_${process.pid}_${i}`, body),
            body,
          })
            .then(async (res) => {
              if (res.status !== 200) failures += 1;
              await res.arrayBuffer();
            })
            .catch(() => {
              failures += 1;
            }),
        );
      }
      await Promise.all(inflight);
      const expected = (total - warmupEvents) * clientCount;
      const deadline = Date.now() + 10_000;
      while (latencies.length < expected && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
      }
      latencies.sort((a, b) => a - b);
      const pct = (p: number) =>
        latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))];
      const samples = latencies.length;
      const base = {
        suite: 'ws',
        scenario: 'fan-out to one org',
        preset: 'recommended',
        unit: 'ms',
        samples,
      };
      const note = `${clientCount} clients, ${rate} events/s; receipt - webhook send time, 1 ms clock`;
      const figures: Figure[] = [
        { ...base, metric: 'delivery p50', ...percentileFigure('p50', pct(50), samples, note) },
        { ...base, metric: 'delivery p99', ...percentileFigure('p99', pct(99), samples, note) },
        {
          ...base,
          metric: 'messages delivered',
          value: samples,
          unit: 'messages',
          note: `expected ${expected}; ${failures} webhook deliveries failed`,
        },
      ];
      return figures;
    } finally {
      for (const c of clients) c.close();
      await server.stop();
      removeDb();
    }
  },
};
