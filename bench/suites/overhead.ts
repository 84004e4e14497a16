import { closedLoad } from '../../load/autocannon.ts';
import { type LoadResult, runLoad } from '../../load/generator.ts';
import { runProbe } from '../../load/infra/probe.ts';
import {
  type ServerProcess,
  startAppProcess,
  startBundledProcess,
} from '../../load/infra/server-process.ts';
import { scrape, sum } from '../prometheus-text.ts';
import type { Figure } from '../results.ts';
import {
  interval2,
  median,
  minSamples,
  pairedBootstrapRatio,
  quantile,
  type RatioEstimate,
  round2,
} from '../stats.ts';
import {
  type BenchSuite,
  checkAborted,
  copyBenchDatabase,
  cpuProfileArgs,
  productionEnv,
  type SuiteContext,
} from './context.ts';

/**
 * The app's own cost next to its anchors, measured in one run, interleaved round by
 * round: a bare `node:http` JSON hello, the same on bare Hono, the same inside an
 * `AsyncLocalStorage` per request (the floor of per-request context on Node 20), the
 * app's `GET /health`,
 * the members page on a cache hit (the default preset) and on the 52-query baseline,
 * and the cache-hit page with telemetry off, metrics only (the default), traces at the
 * production default sampling (10%) and at 100%. Each target reports req/s and the
 * server's CPU per request (from `/proc`, so the load generator's share of the two
 * cores does not count); each ratio comes with a 95% interval over the paired rounds.
 * With `overheadBlocks` > 1 (full profile) every process is started afresh for each block
 * of rounds, so one process's own speed does not pass for its target's cost.
 * And one indexed single-row lookup through the raw driver (a `libsql` prepared
 * statement) against the same lookup through the app's database layer, in a process of
 * their own run from the bundle.
 *
 * `CPU_PROFILE=1` writes a `.cpuprofile` of every app process into the run's folder.
 */
export const overheadSuite: BenchSuite = {
  description:
    "the app's own cost next to its anchors: bare node:http, bare Hono, /health, members cache hit and baseline, telemetry off/metrics/10%/100%; raw driver vs the DB layer",
  databases: ['file'],
  run: overhead,
  // each telemetry level in a process of its own, serving only the cache hit: what the
  // next level adds, origin by origin (the rows' own figures say how much in all)
  profilePairs: [
    {
      name: 'metrics only over telemetry off',
      base: telemetryProcess('telemetry-off', 'telemetry off'),
      other: telemetryProcess('telemetry-metrics', 'metrics only (default)'),
    },
    {
      name: 'traces at 10% over metrics only',
      base: telemetryProcess('telemetry-metrics', 'metrics only (default)'),
      other: telemetryProcess('telemetry-10', 'traces 10% (production default)'),
    },
    {
      name: 'traces at 100% over metrics only',
      base: telemetryProcess('telemetry-metrics', 'metrics only (default)'),
      other: telemetryProcess('telemetry-100', 'traces 100%'),
    },
  ],
};

/** A telemetry variant's process (its profile folder) and the figure of its CPU per request. */
function telemetryProcess(process: string, target: string) {
  return { process, cpuMetric: `server CPU per request: ${target}` };
}

export const HTTP_SCENARIO = 'app overhead vs the bare runtime';
export const TELEMETRY_SCENARIO = 'telemetry overhead, members cache hit';
export const DB_SCENARIO = 'DB layer vs the raw driver, one indexed row';

interface Target {
  name: string;
  scenario: string;
  preset: string | null;
  /** The name of the process that answers it (`start`). */
  process: string;
  path: string;
  auth: boolean;
}

interface Round {
  rps: number;
  cpuUsPerRequest: number;
  requests: number;
  errors: number;
  /** Spans the process ended during the round (with every request traced only). */
  spans?: number;
}

/** The process that samples every request: its spans are counted round by round. */
const EVERY_REQUEST_TRACED = 'telemetry-100';

/**
 * Spans the app has ended so far: exported or failed (the SDK's own
 * `otel.sdk.processor.span.processed`) plus those still queued for export.
 */
async function spansEnded(server: ServerProcess): Promise<number> {
  const read = async () => {
    const samples = await scrape(server.url);
    // the processed counter appears with the first export
    const processed = 'otel_sdk_processor_span_processed_total';
    return (
      (samples.names.has(processed) ? sum(samples, processed) : 0) +
      sum(samples, 'otel_sdk_processor_span_queue_size')
    );
  };
  // The scrapes make no span of their own (the app traces no `/metrics`). A batch being
  // exported has left the queue and is not yet counted as processed, so a read during an
  // export comes out short (by up to a batch: 512 spans). Read between rounds, with no
  // load, the total only grows until that export lands: read until two reads agree.
  let last = await read();
  for (let attempt = 0; attempt < SPAN_READS; attempt++) {
    await new Promise((resolve) => setTimeout(resolve, SPAN_READ_GAP_MS));
    const now = await read();
    if (now === last) return now;
    last = now;
  }
  return last;
}
const SPAN_READS = 20;
const SPAN_READ_GAP_MS = 150;
async function overhead(ctx: SuiteContext): Promise<Figure[]> {
  const { settings, setup } = ctx;
  const dbFile = copyBenchDatabase(ctx, 'overhead');

  const blocks = settings.overheadBlocks;
  const servers = new Map<string, ServerProcess>();
  /** The app processes' names (not the bare anchors'): they need a longer warm-up. */
  const appProcesses = new Set<string>();
  let started: ServerProcess[] = [];
  ctx.cleanups.push(async () => {
    await Promise.all(started.map((s) => s.stop()));
  });
  const start = async (name: string, run: () => Promise<ServerProcess>) => {
    const server = await run();
    started.push(server);
    servers.set(name, server);
  };
  // not under test: one for every block, stopped last so the apps' final exports are answered
  const sinkProcess = await startBundledProcess('load/infra/otlp-sink.ts', {});
  ctx.cleanups.push(() => sinkProcess.stop());
  const sink = sinkProcess.url;
  let pageBytes = 0;

  /** Fresh anchors and apps: every process of a block starts together. */
  const startBlock = async (block: number) => {
    ctx.progress(`overhead: block ${block}/${blocks}, starting the anchors and six app processes`);
    const app = (name: string, env: Record<string, string>) => {
      appProcesses.add(name);
      return start(name, () =>
        startAppProcess(
          productionEnv(ctx, { DATABASE_URL: `file:${dbFile}`, ...env }),
          cpuProfileArgs(ctx, blocks > 1 ? `${name}-block${block}` : name),
        ),
      );
    };
    await Promise.all([
      start('node', () => startBundledProcess('load/infra/hello-server.ts', { HELLO: 'node' })),
      start('hono', () => startBundledProcess('load/infra/hello-server.ts', { HELLO: 'hono' })),
      ...(settings.overheadContextAnchor
        ? [
            start('node-als', () =>
              startBundledProcess('load/infra/hello-server.ts', { HELLO: 'node-als' }),
            ),
          ]
        : []),
      app('default', { DATAFLOW_PRESET: 'recommended' }),
      app('baseline', { DATAFLOW_PRESET: 'baseline' }),
      // each telemetry variant its own process, each loaded once a round: sharing the
      // default process (loaded three times a round) made metrics read 12% cheaper than off
      app('telemetry-off', { DATAFLOW_PRESET: 'recommended', METRICS_ENABLED: 'false' }),
      app('telemetry-metrics', { DATAFLOW_PRESET: 'recommended' }),
      // spans are exported every 500 ms (5 s by default), so the export pipeline is warm
      // before the first round and each round pays for the spans it produced
      app('telemetry-10', {
        DATAFLOW_PRESET: 'recommended',
        OTEL_EXPORTER_OTLP_ENDPOINT: sink,
        OTEL_METRIC_EXPORT_INTERVAL: '60000',
        OTEL_BSP_SCHEDULE_DELAY: '500',
      }),
      app('telemetry-100', {
        DATAFLOW_PRESET: 'recommended',
        OTEL_EXPORTER_OTLP_ENDPOINT: sink,
        OTEL_METRIC_EXPORT_INTERVAL: '60000',
        OTEL_BSP_SCHEDULE_DELAY: '500',
        OTEL_TRACES_SAMPLER_ARG: '1',
      }),
    ]);
    // the bare runtime sending as many bytes as the members page: the payload's own cost
    if (pageBytes === 0) {
      const page = await fetch(servers.get('default')!.url + setup.membersPath, {
        headers: setup.auth,
      });
      pageBytes = (await page.arrayBuffer()).byteLength;
    }
    await start('node-bytes', () =>
      startBundledProcess('load/infra/hello-server.ts', {
        HELLO: 'node',
        HELLO_BYTES: String(pageBytes),
      }),
    );
  };
  // the profiles are written when the app processes exit
  const stopBlock = async () => {
    await Promise.all(started.map((s) => s.stop()));
    started = [];
    servers.clear();
  };
  const members = setup.membersPath;
  const http = (
    name: string,
    s: string,
    path: string,
    auth = false,
    preset: string | null = null,
  ): Target => ({
    name,
    scenario: HTTP_SCENARIO,
    preset,
    process: s,
    path,
    auth,
  });
  const telemetry = (name: string, s: string): Target => ({
    name,
    scenario: TELEMETRY_SCENARIO,
    preset: 'recommended',
    process: s,
    path: members,
    auth: true,
  });
  const targets: Target[] = [
    http('bare node:http hello', 'node', '/'),
    http('bare Hono hello', 'hono', '/'),
    ...(settings.overheadContextAnchor
      ? [http('bare node:http hello in an AsyncLocalStorage', 'node-als', '/')]
      : []),
    http('bare node:http, the members page bytes', 'node-bytes', '/'),
    http('app GET /health', 'default', '/health'),
    http('members page, cache hit', 'default', members, true, 'recommended'),
    http('members page, baseline (52 queries)', 'baseline', members, true, 'baseline'),
    telemetry('telemetry off', 'telemetry-off'),
    telemetry('metrics only (default)', 'telemetry-metrics'),
    telemetry('traces 10% (production default)', 'telemetry-10'),
    telemetry('traces 100%', 'telemetry-100'),
  ];

  const rounds = new Map<Target, Round[]>();
  const latency = new Map<Target, LoadResult[]>();
  const latencyTargets = LATENCY_TARGETS.map((name) => targets.find((t) => t.name === name)!);
  /**
   * The warm processes of the last block, one request at a time, interleaved (ABBA): with
   * no queue, each latency is the path's own (and the generator's, alike for every target).
   */
  const latencyPass = async () => {
    for (let round = 1; round <= settings.overheadLatencyRounds; round++) {
      const order = round % 2 === 1 ? latencyTargets : [...latencyTargets].reverse();
      for (const target of order) {
        checkAborted(ctx);
        ctx.progress(
          `overhead: latency, one connection, round ${round}/${settings.overheadLatencyRounds}, ${target.name}`,
        );
        const result = await runLoad({
          baseUrl: servers.get(target.process)!.url,
          headers: target.auth ? setup.auth : {},
          scenario: {
            requests: [
              { name: target.name, method: 'GET', path: target.path, weight: 1, expect: 200 },
            ],
          },
          vars: { orgId: setup.org.id },
          model: { kind: 'closed', connections: 1 },
          // the servers are warm; this generator's own first requests (JIT) are not
          warmupSec: round === 1 && target === order[0] ? LATENCY_ROUND_SEC : 0,
          durationSec: LATENCY_ROUND_SEC,
          keepSamples: true,
          signal: ctx.signal,
        });
        latency.set(target, [...(latency.get(target) ?? []), result]);
      }
    }
  };
  const load = async (target: Target, seconds: number) => {
    const s = servers.get(target.process)!;
    // read outside the CPU window: a scrape is work the round did not ask for
    const spansBefore = target.process === EVERY_REQUEST_TRACED ? await spansEnded(s) : undefined;
    const cpuBefore = s.cpuMs();
    const result = await closedLoad(
      {
        url: s.url + target.path,
        headers: target.auth ? setup.auth : {},
        connections: settings.connections,
        duration: seconds,
      },
      ctx.signal,
    );
    const requests = result.requests.total;
    const cpuUsPerRequest = requests > 0 ? ((s.cpuMs() - cpuBefore) * 1000) / requests : Number.NaN;
    return {
      rps: result.requests.average,
      cpuUsPerRequest,
      requests,
      errors: result.errors + result.timeouts + result.non2xx,
      ...(spansBefore === undefined ? {} : { spans: (await spansEnded(s)) - spansBefore }),
    };
  };
  for (let block = 1; block <= blocks; block++) {
    await startBlock(block);
    // warm-up (JIT, pools, caches), one target at a time: warming them all at once left
    // this process's load generator slower afterwards, and the bare anchors are bound by it
    for (const target of targets) {
      checkAborted(ctx);
      ctx.progress(`overhead: block ${block}/${blocks}, warm-up, ${target.name}`);
      // a bare anchor is warm in a second; the app is not (a fresh production bundle's
      // cache hit: about 1,000, 300, 150 us of CPU per request in its first three
      // seconds, steady from the fourth), and the tracing processes warm up their
      // export pipeline too (a few 500 ms exports)
      await load(target, appProcesses.has(target.process) ? settings.overheadWarmupSec : 1);
    }
    for (let round = 1; round <= settings.overheadRounds; round++) {
      // every other round backwards (ABBA): a target always run right after the heavy
      // baseline page measured slower for it (telemetry off came out 12% dearer than
      // metrics on, in both of two full runs)
      const order = round % 2 === 1 ? targets : [...targets].reverse();
      for (const target of order) {
        checkAborted(ctx);
        ctx.progress(
          `overhead: block ${block}/${blocks}, round ${round}/${settings.overheadRounds}, ${target.name}`,
        );
        const got = await load(target, settings.overheadSec);
        rounds.set(target, [...(rounds.get(target) ?? []), got]);
      }
    }
    if (block === blocks) await latencyPass();
    await stopBlock();
  }
  await sinkProcess.stop();

  const figures: Figure[] = [];
  const of = (name: string) => rounds.get(targets.find((t) => t.name === name)!)!;
  const bare = of('bare node:http hello');
  const off = of('telemetry off');
  for (const target of targets) {
    const runs = rounds.get(target)!;
    const samples = runs.reduce((a, r) => a + r.requests, 0);
    const base = { suite: 'overhead', scenario: target.scenario, preset: target.preset, samples };
    const errors = runs.reduce((a, r) => a + r.errors, 0);
    figures.push(
      {
        ...base,
        metric: `req/s: ${target.name}`,
        value: Math.round(median(runs.map((r) => r.rps))),
        unit: 'req/s',
        note: `closed model, ${settings.connections} connections, median of ${runs.length} interleaved rounds (${blocks} block${blocks > 1 ? 's' : ''} of fresh processes); ${errors} errors`,
      },
      {
        ...base,
        metric: `server CPU per request: ${target.name}`,
        value: round2(median(runs.map((r) => r.cpuUsPerRequest))),
        unit: 'us',
        note: 'user + system CPU of the server process / requests served (/proc, 10 ms ticks)',
      },
    );
    if (target.scenario === HTTP_SCENARIO && runs !== bare) {
      const estimate = pairedBootstrapRatio(
        bare.map((r) => r.rps),
        runs.map((r) => r.rps),
      );
      figures.push(ratioFigure(base, `${target.name} ÷ bare node:http (req/s)`, estimate));
      // the same capacity from the server's CPU per request: what the app serves on the core
      // the bare hello uses. It needs no saturated anchor: when the generator or the host
      // holds the bare hello back, the req/s ratio flatters the app and this one does not
      const capacity = pairedBootstrapRatio(
        runs.map((r) => r.cpuUsPerRequest),
        bare.map((r) => r.cpuUsPerRequest),
      );
      figures.push(
        ratioFigure(base, `${target.name} ÷ bare node:http (CPU per request)`, capacity),
      );
    }
    if (target.name === 'members page, cache hit') {
      const sameBytes = of('bare node:http, the members page bytes');
      const estimate = pairedBootstrapRatio(
        sameBytes.map((r) => r.rps),
        runs.map((r) => r.rps),
      );
      figures.push(
        ratioFigure(
          base,
          `${target.name} ÷ bare node:http sending the same bytes (req/s)`,
          estimate,
        ),
      );
    }
    if (target.scenario === TELEMETRY_SCENARIO && runs !== off) {
      // overhead = extra server CPU per request against telemetry off, and req/s lost
      const cpu = pairedBootstrapRatio(
        off.map((r) => r.cpuUsPerRequest),
        runs.map((r) => r.cpuUsPerRequest),
      );
      figures.push(percentFigure(base, `overhead (CPU per request): ${target.name}`, cpu, 1));
      const rps = pairedBootstrapRatio(
        off.map((r) => r.rps),
        runs.map((r) => r.rps),
      );
      figures.push(percentFigure(base, `overhead (req/s lost): ${target.name}`, rps, -1));
    }
    if (target.process === EVERY_REQUEST_TRACED) {
      figures.push(...spanCost(base, runs, of('metrics only (default)')));
    }
  }
  figures.push(hostFigure(ctx, bare));
  figures.push(...latencyFigures(latencyTargets, latency));
  figures.push(...(await dbLayer(ctx, dbFile)));
  return figures;
}

/**
 * Below this share of a core, the bare hello's server was held back. On a quiet stretch of
 * the reference machine the generator on the other core keeps it at 0.87-0.95 of one; on
 * busy ones (other tenants of the host) it read 0.41-0.67, and its req/s with it.
 */
const QUIET_HOST_CORES = 0.75;

/**
 * How much of a core the bare hello's server used (req/s x CPU per request, the median of
 * its rounds): how quiet the host was. A warning below `QUIET_HOST_CORES`: the paired
 * ratios still hold, but the run's absolute figures read low, and a ratio in req/s
 * flatters the app (the CPU-per-request ratios do not).
 */
function hostFigure(ctx: SuiteContext, bare: readonly Round[]): Figure {
  const cores = round2(median(bare.map((r) => (r.rps * r.cpuUsPerRequest) / 1e6)));
  if (cores < QUIET_HOST_CORES) {
    ctx.warnings.push(
      `overhead: the bare node:http hello's server used ${cores} of a core (${QUIET_HOST_CORES} and more on a quiet host): the host or the load generator held it back; paired ratios hold, this run's absolute figures read low`,
    );
  }
  return {
    suite: 'overhead',
    scenario: HTTP_SCENARIO,
    preset: null,
    metric: 'server cores used: bare node:http hello',
    value: cores,
    unit: 'cores',
    samples: bare.length,
    note: `req/s x CPU per request, median of the rounds: how quiet the host was (${QUIET_HOST_CORES} and more: quiet)`,
  };
}

/**
 * Latency, one request at a time: the bare runtime, the middleware chain, a cache hit,
 * and the bare runtime sending the cache hit's bytes (the client's share of reading them).
 */
const LATENCY_TARGETS = [
  'bare node:http hello',
  'bare node:http, the members page bytes',
  'app GET /health',
  'members page, cache hit',
];
/** What each target's latency is set against. */
const LATENCY_ANCHORS: Record<string, readonly string[]> = {
  'app GET /health': ['bare node:http hello'],
  'members page, cache hit': ['bare node:http hello', 'bare node:http, the members page bytes'],
};
/** Seconds per latency round: some 1,500-5,000 requests at one connection here. */
const LATENCY_ROUND_SEC = 0.5;

/**
 * Each target's p50 and p99 over its rounds pooled, in microseconds (autocannon's 1 ms
 * resolution cannot tell a 60 µs path from a 400 µs one), and each app target's p50
 * against the bare hello's, paired round by round, with the microseconds it adds.
 */
function latencyFigures(
  targets: readonly Target[],
  latency: ReadonlyMap<Target, readonly LoadResult[]>,
): Figure[] {
  const figures: Figure[] = [];
  const p50s = (runs: readonly LoadResult[]) => runs.map((r) => r.latencyMs.p50);
  // each target's rounds and every latency of them (ms, sorted), by name: an anchor's
  // are read again by each target set against it
  const byName = new Map(
    targets.map((t) => {
      const runs = latency.get(t) ?? [];
      const pooled = Float64Array.from(runs.flatMap((r) => [...(r.samples ?? [])])).sort();
      return [t.name, { runs, pooled }] as const;
    }),
  );
  for (const target of targets) {
    const { runs, pooled } = byName.get(target.name)!;
    if (runs.length === 0) continue;
    const errors = runs.reduce((a, r) => a + r.errors, 0);
    const base = {
      suite: 'overhead',
      scenario: HTTP_SCENARIO,
      preset: target.preset,
      samples: pooled.length,
    };
    const note = `closed model, one connection (no queue), load/generator.ts µs histograms, ${runs.length} interleaved rounds of ${LATENCY_ROUND_SEC} s pooled; ${errors} errors`;
    for (const q of ['p50', 'p99'] as const) {
      const enough = pooled.length >= minSamples(q, 'report');
      figures.push({
        ...base,
        metric: `latency ${q}, one connection: ${target.name}`,
        value: enough ? Math.round(quantile(pooled, Number(q.slice(1)) / 100) * 1000) : null,
        unit: 'us',
        note: enough
          ? note
          : `only ${pooled.length} samples (< ${minSamples(q, 'report')} for ${q})`,
      });
    }
    for (const anchor of LATENCY_ANCHORS[target.name] ?? []) {
      const { runs: bare, pooled: barePooled } = byName.get(anchor)!;
      if (bare.length !== runs.length) continue;
      figures.push(
        ratioFigure(
          base,
          `${target.name} ÷ ${anchor} (latency p50)`,
          pairedBootstrapRatio(p50s(bare), p50s(runs)),
        ),
        {
          ...base,
          metric: `latency p50 added over ${anchor}: ${target.name}`,
          value: Math.round((quantile(pooled, 0.5) - quantile(barePooled, 0.5)) * 1000),
          unit: 'us',
          note: `p50 of the rounds pooled, minus that of the ${anchor}: what the path adds to one request`,
        },
      );
    }
  }
  return figures;
}

/**
 * What one span costs, with every request sampled: the spans a request makes (counted by
 * the SDK, round by round) and the CPU per request over metrics alone in the same rounds,
 * divided among them. The traces target (15% at 100%) is a budget per span: 15% of a
 * request's CPU over the spans the request makes.
 */
function spanCost(
  base: Omit<Figure, 'metric' | 'value' | 'unit'>,
  traced: readonly Round[],
  metricsOnly: readonly Round[],
): Figure[] {
  const spans = traced.reduce((n, r) => n + (r.spans ?? 0), 0);
  const requests = traced.reduce((n, r) => n + r.requests, 0);
  const perRequest = requests > 0 ? spans / requests : 0;
  const perSpan = traced.map((r, i) =>
    r.spans && r.requests > 0
      ? (r.cpuUsPerRequest - metricsOnly[i]!.cpuUsPerRequest) / (r.spans / r.requests)
      : Number.NaN,
  );
  const usable = perSpan.filter(Number.isFinite);
  return [
    {
      ...base,
      metric: 'spans per request: traces 100%',
      value: requests > 0 ? round2(perRequest) : null,
      unit: 'spans',
      note: `${spans} spans ended over ${requests} requests (otel.sdk.processor.span.processed + the export queue)`,
    },
    {
      ...base,
      metric: 'CPU per span: traces 100%',
      value: usable.length > 0 ? round2(median(usable)) : null,
      unit: 'us',
      note: "median over the rounds of (CPU per request at 100% - metrics only, same round) / spans per request: a span's start, end, batching and export",
    },
  ];
}

/**
 * One indexed single-row lookup, the raw driver's prepared statement against the app's
 * `getMembership`, interleaved in rounds (`load/infra/db-layer-probe.ts`). The probe runs
 * from its bundle, built as the production server is: in this process (`tsx`) the DB
 * layer's per-call closures would also pay esbuild's `__name` wrapper (side by side, the
 * same probe read 1.14 and 1.20 under `tsx`, 1.09 and 1.10 from the bundle).
 */
async function dbLayer(ctx: SuiteContext, dbFile: string): Promise<Figure[]> {
  const { setup } = ctx;
  ctx.progress('overhead: DB layer vs the raw driver');
  const calls = 2000;
  const rounds = 10;
  const { rawUs, appUs } = await runProbe<{ rawUs: number[]; appUs: number[] }>(
    'load/infra/db-layer-probe.ts',
    {
      DB_FILE: dbFile,
      ORG_ID: setup.org.id,
      USER_ID: setup.admin.id,
      CALLS: String(calls),
      ROUNDS: String(rounds),
    },
    { signal: ctx.signal },
  );
  const base = {
    suite: 'overhead',
    scenario: DB_SCENARIO,
    preset: null,
    samples: calls * rounds,
  };
  const note = `${rounds} interleaved rounds of ${calls} calls, in a process of their own, from the bundle`;
  return [
    {
      ...base,
      metric: 'raw driver (libsql prepared statement)',
      value: round2(median(rawUs)),
      unit: 'us',
      note,
    },
    {
      ...base,
      metric: 'app DB layer (getMembership)',
      value: round2(median(appUs)),
      unit: 'us',
      note,
    },
    ratioFigure(base, 'app DB layer ÷ raw driver', pairedBootstrapRatio(rawUs, appUs)),
  ];
}

const PAIRED = 'median of the paired rounds; its interval a bootstrap of them';

function ratioFigure(
  base: Pick<Figure, 'suite' | 'scenario' | 'preset' | 'samples'>,
  metric: string,
  e: RatioEstimate,
): Figure {
  return {
    ...base,
    metric,
    value: round2(e.ratio),
    unit: 'x',
    interval: interval2(e),
    note: PAIRED,
  };
}

/** `sign` 1: (ratio − 1) as a percentage; −1: (1 − ratio), for a ratio where lower is a loss. */
function percentFigure(
  base: Pick<Figure, 'suite' | 'scenario' | 'preset' | 'samples'>,
  metric: string,
  e: RatioEstimate,
  sign: 1 | -1,
): Figure {
  const pct = (r: number) => Math.round((r - 1) * 1000) / 10;
  const [low, high] = sign === 1 ? [pct(e.low), pct(e.high)] : [-pct(e.high), -pct(e.low)];
  return {
    ...base,
    metric,
    value: sign === 1 ? pct(e.ratio) : -pct(e.ratio),
    unit: '%',
    interval: { low, high },
    note: PAIRED,
  };
}
