import { userEvent } from '../../fixtures/clerk/events.ts';
import { largestOrg } from '../../fixtures/seed/generate.ts';
import { type ServerProcess, startServerProcess } from '../../load/infra/server-process.ts';
import { signedHeaders } from '../../load/webhook-sender.ts';
import { type FleetReport, startWsClients, type WsClientFleet } from '../../load/ws-clients.ts';
import { scrape, sum } from '../prometheus-text.ts';
import type { Figure } from '../results.ts';
import { quantile } from '../stats.ts';
import {
  type BenchSuite,
  checkAborted,
  copyBenchDatabase,
  percentileFigure,
  productionEnv,
  type SuiteContext,
} from './context.ts';

/**
 * The realtime channel against its physical limit. Every figure stands next to a bare
 * `ws` server (`load/infra/raw-ws-server.ts`) measured in the same run on the same
 * machine, with the same client fleet (worker processes of their own) and the same
 * sender:
 *
 * - fan-out: N sockets of one org, change events at a fixed rate (open model). The app
 *   gets signed Clerk `user.updated` webhooks (verify, commit, change log, publisher,
 *   hub); the raw server gets the finished frame by `POST /publish`. Latency per frame:
 *   receipt minus the event's `version`, the sender's send time.
 * - idle sockets: memory per socket held (RSS growth / sockets), app vs raw.
 * - one paused client: one socket stops reading while the others keep up; the app's RSS
 *   and the hub's buffered bytes over time must stay bounded.
 */
export const wsSuite: BenchSuite = {
  description:
    'WebSocket push next to a bare ws server: fan-out latency and delivery, memory per idle socket, a paused client',
  databases: ['file'],
  run: async (ctx) => {
    const figures: Figure[] = [];
    const servers = await startServers(ctx);
    try {
      figures.push(...(await idleSockets(ctx, servers)));
      for (const shape of ctx.settings.wsFanout) {
        checkAborted(ctx);
        figures.push(...(await fanOut(ctx, servers, shape)));
      }
      checkAborted(ctx);
      figures.push(...(await pausedClient(ctx, servers)));
    } finally {
      await Promise.all([servers.app.stop(), servers.raw.stop()]);
    }
    return figures;
  },
};

interface Servers {
  app: ServerProcess;
  raw: ServerProcess;
  members: Array<{ userId: string; orgId: string }>;
}

async function startServers(ctx: SuiteContext): Promise<Servers> {
  const dbFile = copyBenchDatabase(ctx, 'ws');
  const app = await startServerProcess(
    productionEnv(ctx, { DATABASE_URL: `file:${dbFile}`, DATAFLOW_PRESET: 'recommended' }),
  );
  ctx.cleanups.push(() => app.stop());
  const raw = await startServerProcess({}, 'load/infra/raw-ws-server.ts');
  ctx.cleanups.push(() => raw.stop());
  const { org } = largestOrg(ctx.setup.fixture);
  const members = ctx.setup.fixture.memberships
    .filter((m) => m.orgId === org.id)
    .map((m) => ({ userId: m.userId, orgId: m.orgId }));
  return { app, raw, members };
}

const wsUrl = (server: ServerProcess) => `${server.url.replace('http', 'ws')}/ws`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** One client process per 500 sockets, at most two (the machine has two cores). */
const processesFor = (sockets: number) => Math.min(2, Math.ceil(sockets / 500));

async function openFleet(
  ctx: SuiteContext,
  server: ServerProcess,
  sockets: number,
  members: Array<{ userId: string; orgId: string }> | null,
): Promise<WsClientFleet> {
  if (members !== null && members.length < sockets) {
    throw new Error(`the bench seed has ${members.length} members to connect; ${sockets} asked`);
  }
  const fleet = await startWsClients({
    url: wsUrl(server),
    sockets,
    processes: processesFor(sockets),
    ...(members ? { auth: { privateKeyPem: ctx.setup.keys.privateKey, members } } : {}),
  });
  if (fleet.failed > 0) {
    await fleet.close();
    throw new Error(`${fleet.failed} of ${sockets} sockets did not connect: ${fleet.firstError}`);
  }
  return fleet;
}

// ---------------------------------------------------------------- idle sockets

async function idleSockets(ctx: SuiteContext, servers: Servers): Promise<Figure[]> {
  const n = ctx.settings.wsIdleSockets;
  // one socket per membership, across orgs, as a real population of tabs would be
  const members = ctx.setup.fixture.memberships
    .slice(0, n)
    .map((m) => ({ userId: m.userId, orgId: m.orgId }));
  const perSocket: Record<'raw' | 'app', number> = { raw: 0, app: 0 };
  for (const side of ['raw', 'app'] as const) {
    checkAborted(ctx);
    ctx.progress(`ws: ${n} idle sockets on the ${side === 'raw' ? 'bare ws server' : 'app'}`);
    const server = servers[side];
    await sleep(500);
    const before = server.rssBytes();
    const fleet = await openFleet(ctx, server, n, side === 'app' ? members : null);
    await sleep(1000);
    perSocket[side] = (server.rssBytes() - before) / fleet.connected;
    await fleet.close();
    await sleep(500);
  }
  const base = {
    suite: 'ws',
    scenario: 'idle sockets',
    samples: n,
    note: `${n} sockets in one process; RSS growth / sockets, 1 s after the last connected`,
  };
  const kib = (bytes: number) => Math.round((bytes / 1024) * 10) / 10;
  return [
    { ...base, preset: 'recommended', metric: 'sockets held', value: n, unit: 'sockets' },
    {
      ...base,
      preset: 'recommended',
      metric: 'memory per socket',
      value: kib(perSocket.app),
      unit: 'KiB',
    },
    {
      ...base,
      preset: null,
      metric: 'raw ws memory per socket',
      value: kib(perSocket.raw),
      unit: 'KiB',
    },
    {
      ...base,
      preset: null,
      metric: 'memory per socket ÷ raw ws',
      value: perSocket.raw > 0 ? Math.round((perSocket.app / perSocket.raw) * 100) / 100 : null,
      unit: 'x',
    },
  ];
}

// ---------------------------------------------------------------- fan-out

/** Sends change events to one side at a fixed rate; resolves when every answer is in. */
interface Sender {
  send(i: number, version: number): Promise<boolean>;
}

function appSender(ctx: SuiteContext, app: ServerProcess, members: Servers['members']): Sender {
  const users = new Map(ctx.setup.fixture.users.map((u) => [u.id, u]));
  const run = `${process.pid}_${Date.now().toString(36)}`;
  return {
    async send(i, version) {
      const user = users.get(members[i % members.length]!.userId)!;
      const body = JSON.stringify(
        userEvent('user.updated', { ...user, updatedAt: version }, version),
      );
      const res = await fetch(`${app.url}/webhooks/clerk`, {
        method: 'POST',
        headers: signedHeaders(ctx.webhookSecret, `msg_ws_${run}_${i}`, body),
        body,
      });
      const outcome = res.ok ? ((await res.json()) as { status?: string }).status : null;
      return outcome === 'applied';
    },
  };
}

function rawSender(raw: ServerProcess, members: Servers['members']): Sender {
  return {
    async send(i, version) {
      // the app's change frame, field for field (the trace context is as long as a real one)
      const body = JSON.stringify({
        type: 'change',
        id: 0, // numbered by the server in arrival order
        entity: 'user',
        entityId: members[i % members.length]!.userId,
        op: 'upsert',
        version,
        data: {},
        traceparent: `00-${'ab'.repeat(16)}-${'cd'.repeat(8)}-01`,
      });
      const res = await fetch(`${raw.url}/publish`, { method: 'POST', body });
      await res.arrayBuffer();
      return res.ok;
    },
  };
}

interface PushRun {
  report: FleetReport;
  /** Events sent after recording began, and how many of them the server took. */
  measured: number;
  accepted: number;
  sockets: number;
}

/**
 * One push run: a fleet of `sockets`, one second of warm-up, then `sec` seconds at
 * `rate` (open model: event i is due at start + i/rate, late ones are not skipped), then
 * up to 10 s for the last frames. `onTick` runs every 250 ms (the paused run's sampling).
 */
async function pushRun(
  ctx: SuiteContext,
  sender: Sender,
  fleet: WsClientFleet,
  rate: number,
  sec: number,
  onTick?: () => Promise<void>,
  /** Sockets that stopped reading: not waited for. */
  paused = 0,
): Promise<PushRun> {
  const warmup = rate;
  const total = warmup + Math.round(rate * sec);
  const answers: Array<Promise<boolean>> = [];
  let fromMs = Number.POSITIVE_INFINITY;
  const started = performance.now();
  let nextTick = started;
  for (let i = 0; i < total; i++) {
    const wait = started + (i * 1000) / rate - performance.now();
    if (wait > 0) await sleep(wait);
    if (i === warmup) {
      // every measured event's version is >= fromMs, every warm-up one's below it
      await sleep(2);
      fromMs = Date.now();
      fleet.record(fromMs);
    }
    if (onTick && performance.now() >= nextTick) {
      nextTick += 250;
      void onTick();
    }
    const version = Math.max(Date.now(), i >= warmup ? fromMs : 0);
    const answer = sender.send(i, version).catch(() => false);
    if (i >= warmup) answers.push(answer);
  }
  const accepted = (await Promise.all(answers)).filter(Boolean).length;
  const expected = accepted * (fleet.connected - paused);
  const deadline = Date.now() + 10_000;
  for (;;) {
    const { tallies } = await fleet.collect({ latencies: false });
    const received = tallies.reduce((n, t) => n + t.received, 0);
    if (received >= expected || Date.now() > deadline) break;
    if (onTick) await onTick();
    await sleep(250);
  }
  checkAborted(ctx);
  return {
    report: await fleet.collect(),
    measured: answers.length,
    accepted,
    sockets: fleet.connected,
  };
}

async function fanOut(
  ctx: SuiteContext,
  servers: Servers,
  shape: { clients: number; rate: number },
): Promise<Figure[]> {
  const { clients, rate } = shape;
  const sec = ctx.settings.wsSec;
  const scenario = `fan-out ${clients} sockets x ${rate} events/s`;
  const runs: Partial<Record<'raw' | 'app', PushRun>> = {};
  for (const side of ['raw', 'app'] as const) {
    ctx.progress(`ws: ${scenario}, ${side === 'raw' ? 'bare ws server' : 'app'}, ${sec}s`);
    const server = servers[side];
    const fleet = await openFleet(ctx, server, clients, side === 'app' ? servers.members : null);
    try {
      const sender =
        side === 'app'
          ? appSender(ctx, server, servers.members)
          : rawSender(server, servers.members);
      runs[side] = await pushRun(ctx, sender, fleet, rate, sec);
    } finally {
      await fleet.close();
    }
  }
  const figures: Figure[] = [];
  const p99: Partial<Record<'raw' | 'app', ReturnType<typeof percentileFigure>>> = {};
  for (const side of ['raw', 'app'] as const) {
    const run = runs[side]!;
    const { latencies, tallies } = run.report;
    const samples = latencies.length;
    const expected = run.accepted * run.sockets;
    const duplicates = tallies.reduce((n, t) => n + t.duplicates, 0);
    const outOfOrder = tallies.reduce((n, t) => n + t.outOfOrder, 0);
    const note = `${clients} sockets, ${rate} events/s for ${sec}s; receipt - send time`;
    p99[side] = percentileFigure('p99', quantile(latencies, 0.99), samples, note);
    const prefix = side === 'raw' ? 'raw ws ' : '';
    const base = {
      suite: 'ws',
      scenario,
      preset: side === 'app' ? 'recommended' : null,
      unit: 'ms',
      samples,
    };
    figures.push(
      {
        ...base,
        metric: `${prefix}delivery p50`,
        ...percentileFigure('p50', quantile(latencies, 0.5), samples, note),
      },
      {
        ...base,
        metric: `${prefix}delivery p99`,
        ...p99[side],
      },
      {
        ...base,
        metric: `${prefix}delivered share`,
        value: expected > 0 ? Math.round((samples / expected) * 10_000) / 10_000 : null,
        unit: 'ratio',
        note: `${samples} of ${expected} frames (${run.accepted} of ${run.measured} events accepted x ${run.sockets} sockets); ${duplicates} duplicates, ${outOfOrder} out of order`,
      },
    );
    if (side === 'app') {
      figures.push({
        ...base,
        metric: 'frames duplicated or out of order',
        value: duplicates + outOfOrder,
        unit: 'frames',
      });
    }
  }
  figures.push({
    suite: 'ws',
    scenario,
    preset: null,
    metric: 'delivery p99 ÷ raw ws',
    value:
      p99.app?.value != null && p99.raw?.value
        ? Math.round((p99.app.value / p99.raw.value) * 100) / 100
        : null,
    unit: 'x',
    samples: Math.min(runs.raw!.report.latencies.length, runs.app!.report.latencies.length),
    note: `app p99 ${p99.app?.value ?? '-'} ms, bare ws p99 ${p99.raw?.value ?? '-'} ms, same run`,
  });
  return figures;
}

// ---------------------------------------------------------------- paused client

async function pausedClient(ctx: SuiteContext, servers: Servers): Promise<Figure[]> {
  const { sec, ...shape } = ctx.settings.wsPaused;
  const { app } = servers;
  ctx.progress(`ws: one of ${shape.clients} sockets paused, ${shape.rate} events/s, ${sec}s`);
  const fleet = await openFleet(ctx, app, shape.clients, servers.members);
  const rss: number[] = [];
  const buffered: number[] = [];
  const sample = async () => {
    rss.push(app.rssBytes());
    buffered.push(sum(await scrape(app.url), 'realtime_buffered'));
  };
  let run: PushRun;
  try {
    await sample();
    fleet.pause(0);
    run = await pushRun(
      ctx,
      appSender(ctx, app, servers.members),
      fleet,
      shape.rate,
      sec,
      sample,
      1,
    );
    await sample();
  } finally {
    await fleet.close();
  }
  const [paused, ...others] = run.report.tallies;
  const othersReceived = others.reduce((n, t) => n + t.received, 0);
  const othersExpected = run.accepted * others.length;
  const mib = (bytes: number) => Math.round((bytes / 1024 / 1024) * 100) / 100;
  const base = {
    suite: 'ws',
    scenario: 'one paused client',
    preset: 'recommended',
    samples: rss.length,
  };
  const note = `${shape.clients} sockets, ${shape.rate} events/s for ${sec}s, socket 0 stops reading; sampled every 250 ms`;
  return [
    {
      ...base,
      metric: 'RSS growth while paused',
      value: mib(Math.max(...rss) - rss[0]!),
      unit: 'MiB',
      note: `${note}; RSS ${mib(rss[0]!)} -> max ${mib(Math.max(...rss))} -> end ${mib(rss.at(-1)!)} MiB`,
    },
    {
      ...base,
      metric: 'hub buffered bytes, max',
      value: Math.max(...buffered),
      unit: 'bytes',
      note: `series: ${buffered.map((b) => Math.round(b / 1024)).join(' ')} KiB; paused socket got ${paused?.received ?? 0} frames, ${paused?.resets ?? 0} resets, closed ${paused?.closed ?? 0}`,
    },
    {
      ...base,
      metric: 'others delivered share',
      value:
        othersExpected > 0 ? Math.round((othersReceived / othersExpected) * 10_000) / 10_000 : null,
      unit: 'ratio',
      samples: othersReceived,
    },
  ];
}
