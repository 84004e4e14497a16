import { parseArgs } from 'node:util';
import { WebSocket } from 'ws';
import { readDevKeys } from '../fixtures/auth/keys.ts';
import { mintSessionToken } from '../fixtures/auth/token.ts';
import { userEvent } from '../fixtures/clerk/events.ts';
import { generateFixture, largestOrg } from '../fixtures/seed/generate.ts';
import { loadFixture } from '../fixtures/seed/load.ts';
import { openDatabase } from '../system/db/client.ts';
import { runMigrations } from '../system/db/migrate.ts';
import { DEV_KEYS_DIR } from '../system/env.ts';
import { connectRealtime, type WebSocketConstructor } from '../system/realtime/client.ts';
import { assertLoopback } from './loopback.ts';
import { startServerProcess } from './servers.ts';
import { signedHeaders } from './webhook-sender.ts';

/**
 * WebSocket fan-out: N subscribed clients of one org (distinct members of the largest
 * org of the bench seed), pushes driven by signed Clerk webhooks at a fixed rate (open
 * model), delivery latency measured per message: client receipt time minus the event's
 * `updated_at`, which the sender stamps with its send time. Sender, clients and the app
 * run on this machine; the app is its own process.
 *
 *   npx tsx load/ws-fanout.ts [--clients 1000] [--rate 200] [--duration 10] [--url <running app>]
 */
const { values } = parseArgs({
  options: {
    clients: { type: 'string', default: '1000' },
    rate: { type: 'string', default: '200' },
    duration: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '2' },
    url: { type: 'string' },
    'allow-remote': { type: 'boolean', default: false },
  },
  strict: true,
});
const num = (name: string, raw: string | undefined, min: number) => {
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min) {
    console.error(`ws-fanout: --${name} must be a number >= ${min}, got ${JSON.stringify(raw)}`);
    process.exit(2);
  }
  return n;
};
const clientCount = num('clients', values.clients, 1);
const rate = num('rate', values.rate, 1);
const durationSec = num('duration', values.duration, 1);
const warmupSec = num('warmup', values.warmup, 0);

const fixture = generateFixture('bench');
const { org } = largestOrg(fixture);
const members = fixture.memberships.filter((m) => m.orgId === org.id).map((m) => m.userId);
if (members.length < clientCount) {
  console.error(
    `ws-fanout: the largest bench org has ${members.length} members; --clients must not exceed it`,
  );
  process.exit(2);
}
const keys = readDevKeys(DEV_KEYS_DIR);
const secret = (await import('node:fs'))
  .readFileSync(`${DEV_KEYS_DIR}/webhook-secret`, 'utf8')
  .trim();

let url = values.url;
let stop = async () => {};
if (url === undefined) {
  const dbUrl = `file:.data/ws-fanout-${process.pid}.db`;
  const database = await openDatabase({ url: dbUrl });
  await runMigrations(database.db);
  await loadFixture(database, fixture);
  database.close();
  const server = await startServerProcess({
    DATABASE_URL: dbUrl,
    CLERK_JWT_KEY: keys.publicKey,
    CLERK_WEBHOOK_SIGNING_SECRET: secret,
    DB_MIGRATE_ON_START: 'false',
  });
  url = server.url;
  stop = async () => {
    await server.stop();
    const { rmSync } = await import('node:fs');
    for (const suffix of ['', '-wal', '-shm'])
      rmSync(`.data/ws-fanout-${process.pid}.db${suffix}`, { force: true });
  };
}
assertLoopback(url, values['allow-remote'] === true);

const users = new Map(fixture.users.map((u) => [u.id, u]));
const latencies: number[] = [];
let measuring = false;
let received = 0;
let resets = 0;
const wsUrl = `${url.replace('http', 'ws')}/ws`;
const clients = [];
try {
  console.error(`connecting ${clientCount} clients to ${wsUrl}…`);
  for (let i = 0; i < clientCount; i++) {
    const token = await mintSessionToken({
      privateKeyPem: keys.privateKey,
      userId: members[i]!,
      orgId: org.id,
    });
    clients.push(
      connectRealtime({
        url: wsUrl,
        token: () => token,
        WebSocket: WebSocket as unknown as WebSocketConstructor,
        onChange: (change, at) => {
          received += 1;
          if (measuring && change.entity === 'user') latencies.push(at - change.version);
        },
        onReset: () => {
          resets += 1;
        },
      }),
    );
  }
  await Promise.all(clients.map((c) => c.ready()));
  console.error(
    `${clientCount} clients ready; sending ${rate} events/s for ${warmupSec}s warm-up + ${durationSec}s`,
  );

  const total = Math.round(rate * (warmupSec + durationSec));
  const started = performance.now();
  const warmupEvents = Math.round(rate * warmupSec);
  let failures = 0;
  const inflight: Promise<void>[] = [];
  for (let i = 0; i < total; i++) {
    const due = started + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    if (i === warmupEvents) measuring = true;
    const user = users.get(members[i % members.length]!)!;
    const now = Date.now();
    const body = JSON.stringify(
      userEvent('user.updated', { ...user, firstName: `F${i}`, updatedAt: now }, now),
    );
    inflight.push(
      fetch(`${url}/webhooks/clerk`, {
        method: 'POST',
        headers: signedHeaders(secret, `msg_fanout_${process.pid}_${i}`, body),
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
  while (latencies.length < expected && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 50));
  const sentSeconds = (performance.now() - started) / 1000;

  latencies.sort((a, b) => a - b);
  const pct = (p: number) =>
    latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))];
  console.log(
    JSON.stringify(
      {
        clients: clientCount,
        ratePerSec: rate,
        measuredSeconds: durationSec,
        eventsSent: total,
        webhookFailures: failures,
        sendSeconds: +sentSeconds.toFixed(2),
        messagesExpected: expected,
        messagesMeasured: latencies.length,
        messagesTotalReceived: received,
        resets,
        latencyMs: { p50: pct(50), p90: pct(90), p99: pct(99), max: latencies.at(-1) },
        note: 'latency = client receipt - webhook send time (updated_at), 1 ms clock resolution',
      },
      null,
      2,
    ),
  );
} finally {
  for (const c of clients) c.close();
  await stop();
}
