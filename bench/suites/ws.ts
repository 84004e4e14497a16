import { request } from 'undici';
import { userEvent } from '../../fixtures/clerk/events.ts';
import { largestOrg } from '../../fixtures/seed/generate.ts';
import {
  type ServerProcess,
  startAppProcess,
  startBundledProcess,
} from '../../load/infra/server-process.ts';
import { signedHeaders } from '../../load/webhook-sender.ts';
import { type FleetReport, startWsClients, type WsClientFleet } from '../../load/ws-clients.ts';
import { envSchema } from '../../system/env.ts';
import { scrape, sum } from '../prometheus-text.ts';
import type { Figure } from '../results.ts';
import { interval2, pairedBootstrapRatio, quantile, round2 } from '../stats.ts';
import {
  type BenchSuite,
  checkAborted,
  copyBenchDatabase,
  cpuProfileArgs,
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
    // memory per socket on processes of their own: nothing else has touched their heaps
    const fresh = await startServers(ctx);
    try {
      figures.push(...(await idleSockets(ctx, fresh)));
    } finally {
      await Promise.all([fresh.app.stop(), fresh.raw.stop()]);
    }
    checkAborted(ctx);
    const servers = await startServers(ctx, true);
    try {
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
  /** The app's frame window as deployed (its default). */
  frameWindowMs: number;
  members: Array<{ userId: string; orgId: string }>;
}

/** `profile`: with CPU_PROFILE=1 both write a CPU profile (`profiles/ws-app`, `ws-raw`). */
async function startServers(ctx: SuiteContext, profile = false): Promise<Servers> {
  const dbFile = copyBenchDatabase(ctx, 'ws');
  const app = await startAppProcess(
    productionEnv(ctx, { DATABASE_URL: `file:${dbFile}`, DATAFLOW_PRESET: 'recommended' }),
    profile ? cpuProfileArgs(ctx, 'ws-app') : [],
  );
  ctx.cleanups.push(() => app.stop());
  const raw = await startBundledProcess(
    'load/infra/raw-ws-server.ts',
    {},
    profile ? cpuProfileArgs(ctx, 'ws-raw') : [],
  );
  ctx.cleanups.push(() => raw.stop());
  const { org } = largestOrg(ctx.setup.fixture);
  const members = ctx.setup.fixture.memberships
    .filter((m) => m.orgId === org.id)
    .map((m) => ({ userId: m.userId, orgId: m.orgId }));
  const frameWindowMs = envSchema.shape.WS_FRAME_WINDOW_MS.parse(undefined);
  return { app, raw, members, frameWindowMs };
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
  query = '',
): Promise<WsClientFleet> {
  if (members !== null && members.length < sockets) {
    throw new Error(`the bench seed has ${members.length} members to connect; ${sockets} asked`);
  }
  const fleet = await startWsClients({
    url: `${wsUrl(server)}${query}`,
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

/**
 * Sends change events to one side at a fixed rate; resolves when every answer is in.
 * Both sides send with undici's `request` (keep-alive, one write per request): lighter
 * than `fetch` for the harness process, which shares the cores with both servers.
 */
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
      const res = await request(`${app.url}/webhooks/clerk`, {
        method: 'POST',
        headers: signedHeaders(ctx.webhookSecret, `msg_ws_${run}_${i}`, body),
        body,
      });
      const answer = await res.body.text();
      return (
        res.statusCode === 200 && (JSON.parse(answer) as { status?: string }).status === 'applied'
      );
    },
  };
}

function rawSender(
  raw: ServerProcess,
  members: Servers['members'],
  topic: string,
  windowMs: number,
): Sender {
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
      const res = await request(`${raw.url}/publish?topic=${topic}&windowMs=${windowMs}`, {
        method: 'POST',
        body,
      });
      await res.body.dump();
      return res.statusCode >= 200 && res.statusCode < 300;
    },
  };
}

interface PushRun {
  /** Events sent while recording, and how many of them the server took. */
  measured: number;
  accepted: number;
  /**
   * Send -> HTTP answer of each recorded event, ms: the app answers after verify, commit
   * and fan-out, the bare server after its fan-out, so the difference is the app's path
   * to the fan-out.
   */
  answerMs: number[];
  /** p99 of each round alone, ms: one stalled round shows here. */
  roundP99s: number[];
}

/**
 * One push round at `rate` for `sec` seconds (open model: event i is due at start +
 * i/rate, late ones are not skipped), then until every socket has every accepted
 * change (at most 120 s: a side that cannot keep up drains its backlog here, not into
 * the next side's round). `warmupSec` first, unrecorded, then recording starts.
 * `onTick` runs every 250 ms (the paused run's sampling); `paused` sockets are not
 * waited for.
 */
async function pushRound(
  ctx: SuiteContext,
  sender: Sender,
  fleet: WsClientFleet,
  options: {
    rate: number;
    sec: number;
    /** Seconds at the rate before recording starts. */
    warmupSec: number;
    paused?: number;
    onTick?: () => Promise<void>;
  },
): Promise<PushRun> {
  const { rate, onTick } = options;
  const warmup = Math.round(rate * options.warmupSec);
  const total = warmup + Math.round(rate * options.sec);
  const receivedBefore = (await fleet.collect({ latencies: false })).tallies.reduce(
    (n, t) => n + t.received,
    0,
  );
  const answers: Array<Promise<boolean>> = [];
  const answerMs: number[] = [];
  let fromMs = 0;
  const started = performance.now();
  let nextTick = started;
  for (let i = 0; i < total; i++) {
    const wait = started + (i * 1000) / rate - performance.now();
    if (wait > 0) await sleep(wait);
    if (warmup > 0 && i === warmup) {
      // every measured event's version is >= fromMs, every warm-up one's below it
      await sleep(2);
      fromMs = Date.now();
      await fleet.record(fromMs);
    }
    if (onTick && performance.now() >= nextTick) {
      nextTick += 250;
      void onTick();
    }
    const version = Math.max(Date.now(), fromMs);
    const sent = performance.now();
    const answer = sender.send(i, version).catch(() => false);
    if (i >= warmup) {
      answers.push(answer);
      void answer.then(() => answerMs.push(performance.now() - sent));
    }
  }
  const accepted = (await Promise.all(answers)).filter(Boolean).length;
  const expected = receivedBefore + accepted * (fleet.connected - (options.paused ?? 0));
  const deadline = Date.now() + 120_000;
  for (;;) {
    const { tallies } = await fleet.collect({ latencies: false });
    if (tallies.reduce((n, t) => n + t.received, 0) >= expected || Date.now() > deadline) break;
    checkAborted(ctx);
    if (onTick) await onTick();
    await sleep(250);
  }
  checkAborted(ctx);
  await fleet.record(Number.POSITIVE_INFINITY); // the next round's warm-up is not counted
  const round = await fleet.collect({ latencies: true, sinceLastRound: true });
  return {
    measured: answers.length,
    accepted,
    answerMs,
    roundP99s: [quantile(round.latencies, 0.99)],
  };
}

/** Unrecorded seconds before each round (the first: `wsFirstWarmupSec`). */
const ROUND_WARMUP_SEC = 0.5;

/** A side of the fan-out comparison: the app, or the bare ws server with or without the window. */
interface Side {
  key: 'raw' | 'raw-window' | 'app';
  label: string;
  /** Prefix of its metric names. */
  prefix: string;
  windowMs: number;
}

/**
 * The sides measured in interleaved rounds (raw, raw with the window, app, then app,
 * raw with the window, raw, ...),
 * each with its own fleet connected throughout, so that a noisy second of the machine
 * falls on every side alike.
 */
async function fanOut(
  ctx: SuiteContext,
  servers: Servers,
  shape: { clients: number; rate: number; rounds: number },
): Promise<Figure[]> {
  const { clients, rate, rounds } = shape;
  const sec = ctx.settings.wsSec;
  const w = servers.frameWindowMs;
  const scenario = `fan-out ${clients} sockets x ${rate} events/s`;
  const sides: Side[] = [
    { key: 'raw', label: 'bare ws server, a frame per change', prefix: 'raw ws ', windowMs: 0 },
    ...(w > 0
      ? [
          {
            key: 'raw-window' as const,
            label: `bare ws server, ${w} ms frame window`,
            prefix: 'raw ws (window) ',
            windowMs: w,
          },
        ]
      : []),
    { key: 'app', label: `app, ${w} ms frame window`, prefix: '', windowMs: w },
  ];
  ctx.progress(`ws: ${scenario}: ${sides.length} fleets of ${clients} sockets`);
  const fleets = new Map<Side['key'], WsClientFleet>();
  const totals = new Map<Side['key'], PushRun>();
  const figures: Figure[] = [];
  try {
    for (const side of sides) {
      const isApp = side.key === 'app';
      const fleet = await openFleet(
        ctx,
        isApp ? servers.app : servers.raw,
        clients,
        isApp ? servers.members : null,
        isApp ? '' : `?topic=${side.key}`,
      );
      fleets.set(side.key, fleet);
      totals.set(side.key, { measured: 0, accepted: 0, answerMs: [], roundP99s: [] });
    }
    for (let round = 0; round < rounds; round++) {
      // every other round backwards (ABBA): no side always runs right after another
      for (const side of round % 2 === 0 ? sides : sides.toReversed()) {
        checkAborted(ctx);
        ctx.progress(`ws: ${scenario}, ${side.label}, round ${round + 1}/${rounds}, ${sec}s`);
        const sender =
          side.key === 'app'
            ? appSender(ctx, servers.app, servers.members)
            : rawSender(servers.raw, servers.members, side.key, side.windowMs);
        const run = await pushRound(ctx, sender, fleets.get(side.key)!, {
          rate,
          sec,
          // every round warms up: a side that sat idle while the others ran starts cold;
          // the first round longer: a process that has just started runs the path cold
          // (round 1 alone had a p99 of 53 ms against 13-16 in rounds 2 and 3, raw 13-17)
          warmupSec: round === 0 ? ctx.settings.wsFirstWarmupSec : ROUND_WARMUP_SEC,
        });
        const total = totals.get(side.key)!;
        total.measured += run.measured;
        total.accepted += run.accepted;
        total.answerMs.push(...run.answerMs);
        total.roundP99s.push(...run.roundP99s);
      }
    }
    const p99 = new Map<Side['key'], ReturnType<typeof percentileFigure>>();
    const samplesOf = new Map<Side['key'], number>();
    for (const side of sides) {
      const fleet = fleets.get(side.key)!;
      const { latencies, tallies } = await fleet.collect();
      const run = totals.get(side.key)!;
      const isApp = side.key === 'app';
      const samples = latencies.length;
      const expected = run.accepted * fleet.connected;
      const duplicates = tallies.reduce((n, t) => n + t.duplicates, 0);
      const outOfOrder = tallies.reduce((n, t) => n + t.outOfOrder, 0);
      const resets = tallies.reduce((n, t) => n + t.resets, 0);
      const closed = tallies.reduce((n, t) => n + t.closed, 0);
      const short = tallies.filter((t) => t.received < run.accepted).length;
      const perRound = run.roundP99s.map((v) => v.toFixed(1)).join(', ');
      const note = `${side.label}: ${clients} sockets, ${rate} events/s, ${rounds} x ${sec}s interleaved; receipt - send time; p99 per round ${perRound} ms`;
      p99.set(side.key, percentileFigure('p99', quantile(latencies, 0.99), samples, note));
      samplesOf.set(side.key, samples);
      const base = {
        suite: 'ws',
        scenario,
        preset: isApp ? 'recommended' : null,
        unit: 'ms',
        samples,
      };
      figures.push(
        {
          ...base,
          metric: `${side.prefix}delivery p50`,
          ...percentileFigure('p50', quantile(latencies, 0.5), samples, note),
        },
        { ...base, metric: `${side.prefix}delivery p99`, ...p99.get(side.key)! },
        {
          ...base,
          metric: `${side.prefix}delivered share`,
          value: expected > 0 ? Math.round((samples / expected) * 10_000) / 10_000 : null,
          unit: 'ratio',
          note: `${samples} of ${expected} changes (${run.accepted} of ${run.measured} events accepted x ${fleet.connected} sockets); ${duplicates} duplicates, ${outOfOrder} out of order; ${short} sockets short, ${resets} resets, ${closed} closed`,
        },
      );
      const answers = Float64Array.from(run.answerMs).sort();
      figures.push({
        ...base,
        metric: `${side.prefix}answer p50`,
        ...percentileFigure(
          'p50',
          quantile(answers, 0.5),
          answers.length,
          `send -> HTTP answer of each event's POST (${isApp ? 'the app answers after verify, commit and fan-out' : 'the bare server answers after its fan-out'}); p99 ${quantile(answers, 0.99).toFixed(2)} ms`,
        ),
        samples: answers.length,
      });
      if (isApp) {
        figures.push({
          ...base,
          metric: 'changes duplicated or out of order',
          value: duplicates + outOfOrder,
          unit: 'changes',
        });
      }
    }
    // the app's p99 over the anchor's, round by round (both measured in the same stretch of
    // the run), and the median of those ratios with its interval: one noisy second of the
    // shared machine moves one round of one side, not the verdict
    const ratio = (anchor: Side['key'], metric: string, what: string) => {
      const app = totals.get('app')!.roundP99s;
      const raw = totals.get(anchor)?.roundP99s;
      if (raw === undefined) return undefined;
      const usable = app.length === raw.length && app.every((v, i) => v > 0 && raw[i]! > 0);
      const estimate = usable ? pairedBootstrapRatio(raw, app) : undefined;
      const rounds = app.map((v, i) => (v / raw[i]!).toFixed(2)).join(', ');
      const figure: Figure = {
        suite: 'ws',
        scenario,
        preset: null,
        metric,
        value: estimate ? round2(estimate.ratio) : null,
        unit: 'x',
        samples: Math.min(samplesOf.get('app') ?? 0, samplesOf.get(anchor) ?? 0),
        ...(estimate ? { interval: interval2(estimate) } : {}),
        note: estimate
          ? `median of the paired rounds' p99 ratios (${rounds}); pooled p99: app ${p99.get('app')?.value ?? '-'} ms, ${what} ${p99.get(anchor)?.value ?? '-'} ms, same run`
          : `no p99 in some round (app ${p99.get('app')?.value ?? '-'} ms, ${what} ${p99.get(anchor)?.value ?? '-'} ms)`,
      };
      return figure;
    };
    const perChange = ratio(
      'raw',
      'delivery p99 ÷ raw ws, a frame per change',
      'bare ws (a frame per change)',
    );
    const windowed = ratio(
      'raw-window',
      'delivery p99 ÷ raw ws, same window',
      `bare ws (${w} ms window)`,
    );
    const measured = [perChange, windowed].filter((f): f is Figure => f !== undefined);
    figures.push(...measured);
    // the verdict's figure: the app against the faster of the bare servers in this run
    const against = measured.filter((f) => f.value !== null).sort((x, y) => y.value! - x.value!)[0];
    if (against) {
      figures.push({
        ...against,
        metric: 'delivery p99 ÷ raw ws',
        note: `the app against the faster bare server of this run (${against.metric.replace('delivery p99 ÷ raw ws, ', '')}): ${against.note}`,
      });
    }
  } finally {
    await Promise.all([...fleets.values()].map((f) => f.close()));
  }
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
  let report: FleetReport;
  try {
    await sample();
    fleet.pause(0);
    run = await pushRound(ctx, appSender(ctx, app, servers.members), fleet, {
      rate: shape.rate,
      sec,
      warmupSec: ROUND_WARMUP_SEC,
      paused: 1,
      onTick: sample,
    });
    await sample();
    report = await fleet.collect({ latencies: false });
  } finally {
    await fleet.close();
  }
  const [paused, ...others] = report.tallies;
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
      note: `${note}; RSS ${mib(rss[0]!)} -> max ${mib(Math.max(...rss))} -> end ${mib(rss.at(-1)!)} MiB, including the ingest of every webhook (the hub's own share is its buffered bytes)`,
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
