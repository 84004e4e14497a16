import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BENCH_DB_FILE, type benchSetup } from '../../load/bench-setup.ts';
import type { LoadResult } from '../../load/generator.ts';
import { type ServerProcess, startAppProcess } from '../../load/infra/server-process.ts';
import { type PresetName, resolveLevers } from '../../system/levers/presets.ts';
import type { BenchOptions, ProfileSettings } from '../config.ts';
import { delta, type Samples } from '../prometheus-text.ts';
import type { Figure } from '../results.ts';
import { minSamples } from '../stats.ts';

/**
 * One measurement of `make bench`. Every suite returns figures in the one results
 * schema (`results.ts`); the runner writes them to `results.json` and the findings read
 * them. A suite starts and stops its own servers (and registers them in `cleanups`,
 * so an abort stops them too).
 */
export interface BenchSuite {
  /** What it measures, in one line (docs/benchmarks.md lists them). */
  readonly description: string;
  /** The databases it measures on; with another `DB=` it is skipped with a warning. */
  readonly databases: ReadonlyArray<BenchOptions['db']>;
  run(ctx: SuiteContext): Promise<Figure[]>;
  /**
   * With `CPU_PROFILE=1`, pairs of its profiled processes the report compares origin by
   * origin (`compareProfiles`), each with the figure of its CPU per request.
   */
  readonly profilePairs?: readonly ProfilePair[];
}

export interface ProfilePair {
  /** What `other` adds over `base`. */
  name: string;
  /** A process's profile folder (`cpuProfileArgs`' name, block suffix left out) and its figure. */
  base: { process: string; cpuMetric: string };
  other: { process: string; cpuMetric: string };
}

/** What every suite gets from the runner. */
export interface SuiteContext {
  options: BenchOptions;
  settings: ProfileSettings;
  dbUrl: string;
  /**
   * The remote database (sqld behind the RTT relay), started on first use: the
   * round-trip and redundant-fetch findings are about it. With DB=sqld it is `dbUrl`.
   */
  remoteDb(): Promise<RemoteDb>;
  setup: Awaited<ReturnType<typeof benchSetup>>;
  /** `results/<run-id>`: where a suite may write files of its own (CPU profiles). */
  runDir: string;
  /** The development webhook signing secret (the app processes get it too). */
  webhookSecret: string;
  signal: AbortSignal;
  progress: (line: string) => void;
  warnings: string[];
  /** Run at the end, also on failure or abort (servers, temp files). */
  cleanups: Array<() => Promise<void> | void>;
}

export interface RemoteDb {
  url: string;
  /** The round trip the relay adds to every query, ms. */
  rttMs: number;
  /** The same sqld without the relay: what one of its requests costs by itself. */
  sqldUrl: string;
}

export class Aborted extends Error {}

export function checkAborted(ctx: SuiteContext) {
  if (ctx.signal.aborted) throw new Aborted();
}

/**
 * A percentile figure, or null with a note when too few samples rest on it
 * (`minSamples`, the one rule the gate uses too).
 */
export function percentileFigure(
  q: 'p50' | 'p95' | 'p99',
  value: number | null | undefined,
  samples: number,
  note?: string,
): Pick<Figure, 'value' | 'note'> {
  const needed = minSamples(q, 'report');
  if (samples < needed)
    return { value: null, note: `only ${samples} samples (< ${needed} for ${q})` };
  return {
    value: value === undefined || value === null ? null : Math.round(value * 100) / 100,
    ...(note ? { note } : {}),
  };
}

/**
 * A private copy of the seeded bench database (a file path), removed when the run
 * ends: every process or run starts from the same data, whatever earlier ones wrote.
 */
export function copyBenchDatabase(ctx: SuiteContext, label: string): string {
  const dir = mkdtempSync(join(tmpdir(), `bench-${label}-`));
  ctx.cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'bench.db');
  copyFileSync(BENCH_DB_FILE, file);
  return file;
}

/**
 * Node flags that make a server process write its CPU profile into
 * `<run>/profiles/<name>/` when it exits (`CPU_PROFILE=1`; none otherwise).
 */
export function cpuProfileArgs(ctx: SuiteContext, name: string): string[] {
  if (!ctx.options.cpuProfile) return [];
  const dir = join(ctx.runDir, 'profiles', name);
  mkdirSync(dir, { recursive: true });
  return ['--cpu-prof', `--cpu-prof-dir=${dir}`];
}

/** The app as it is deployed: production mode, the bench keys, one preset. */
export function productionEnv(ctx: SuiteContext, env: Record<string, string>) {
  return {
    NODE_ENV: 'production',
    CLERK_JWT_KEY: ctx.setup.keys.publicKey,
    CLERK_WEBHOOK_SIGNING_SECRET: ctx.webhookSecret,
    DB_MIGRATE_ON_START: 'false',
    ...env,
  };
}

export type PresetServers = Map<PresetName, ServerProcess> & { stopAll(): Promise<void> };

const handedOn = new WeakMap<SuiteContext, { suite: string; servers: PresetServers }>();

/**
 * A suite done with its app processes stops them, or hands them on to `next` when that
 * suite runs later in this run (`startPresetServers` with `reuse` takes them): the
 * projects mix reuses the members suite's processes, since its writes come after every
 * members figure is taken and its routes cache on their own keys.
 */
export async function releasePresetServers(
  ctx: SuiteContext,
  servers: PresetServers,
  next: string,
  current: string,
): Promise<void> {
  const order = ctx.options.suites as readonly string[];
  if (order.includes(next) && order.indexOf(next) > order.indexOf(current)) {
    handedOn.set(ctx, { suite: next, servers });
    return;
  }
  await servers.stopAll();
}

/**
 * One app process per preset, each on its own copy of the bench database (writes in
 * one preset's run must not change what the next one reads), Redis when a preset
 * needs it. The suite stops them when it ends (`stopAll`), the runner's cleanups in
 * any case.
 */
export async function startPresetServers(
  ctx: SuiteContext,
  label: string,
  options: {
    presets?: readonly PresetName[];
    db?: 'run' | 'remote';
    reuse?: string;
    /** More environment for every process (a lever override). */
    env?: Record<string, string>;
  } = {},
): Promise<PresetServers> {
  const presets = options.presets ?? ctx.options.presets;
  const kept = handedOn.get(ctx);
  if (kept && kept.suite === options.reuse) {
    handedOn.delete(ctx);
    ctx.progress(`${label}: reusing the app processes of the previous suite`);
    return kept.servers;
  }
  const remoteUrl = options.db === 'remote' ? (await ctx.remoteDb()).url : undefined;
  let redis: { url: string; stop(): Promise<void> } | undefined;
  if (presets.includes('cache-redis')) {
    const { startRedis } = await import('../../load/infra/redis.ts');
    redis = await startRedis();
    ctx.cleanups.push(() => redis?.stop());
  }
  const redisUrl = redis?.url;
  const servers = new Map<PresetName, ServerProcess>() as PresetServers;
  servers.stopAll = async () => {
    await Promise.all([...servers.values()].map((s) => s.stop()));
    await redis?.stop();
  };
  // also on failure or abort; stopping twice is harmless
  ctx.cleanups.push(servers.stopAll);
  checkAborted(ctx);
  ctx.progress(`${label}: starting the app with ${presets.join(', ')}`);
  // started together: each waits for its own /health, the runs themselves stay sequential
  await Promise.all(
    presets.map(async (preset) => {
      const appDbUrl =
        remoteUrl ??
        (ctx.options.db === 'file' ? `file:${copyBenchDatabase(ctx, label)}` : ctx.dbUrl);
      const server = await startAppProcess(
        productionEnv(ctx, {
          DATABASE_URL: appDbUrl,
          DATAFLOW_PRESET: preset,
          ...(redisUrl ? { REDIS_URL: redisUrl } : {}),
          ...options.env,
        }),
      );
      servers.set(preset, server);
    }),
  );
  // iterate in the order the presets were given, not the order they became healthy
  const ordered = new Map(presets.map((p) => [p, servers.get(p)!])) as PresetServers;
  ordered.stopAll = servers.stopAll;
  return ordered;
}

/**
 * Figures of one open-model (rate-limited) run: latency corrected for coordinated
 * omission (from the scheduled send time) next to the uncorrected figure, the rate
 * achieved, and arrivals that never got a connection.
 */
export function openModelFigures(
  base: Pick<Figure, 'suite' | 'scenario' | 'preset'>,
  result: LoadResult,
  rate: number,
): Figure[] {
  const samples = result.requests;
  const note = `open model, ${rate} req/s scheduled, latency from the scheduled send time`;
  const pct = (q: 'p50' | 'p95' | 'p99', value: number | undefined) =>
    percentileFigure(q, value, samples, note);
  const figures: Figure[] = [
    {
      ...base,
      metric: 'open: achieved req/s',
      value: Math.round(result.rps),
      unit: 'req/s',
      samples,
      note,
    },
    {
      ...base,
      metric: 'open: latency p50',
      unit: 'ms',
      samples,
      ...pct('p50', result.latencyMs.p50),
    },
    {
      ...base,
      metric: 'open: latency p95',
      unit: 'ms',
      samples,
      ...pct('p95', result.latencyMs.p95),
      histogram: { ...result.latencyMs },
    },
    {
      ...base,
      metric: 'open: latency p99',
      unit: 'ms',
      samples,
      ...pct('p99', result.latencyMs.p99),
    },
    {
      ...base,
      metric: 'open: latency p95 uncorrected',
      unit: 'ms',
      samples,
      ...pct('p95', result.serviceMs?.p95),
    },
    {
      ...base,
      metric: 'open: arrivals not sent',
      value: result.dropped,
      unit: 'requests',
      samples,
      note: 'scheduled but still waiting for a free connection when the window closed',
    },
  ];
  return figures;
}

/** Flags a run whose load generator, not the app, was the bottleneck. */
export function watchGenerator(ctx: SuiteContext, what: string, generatorCpu: number) {
  if (generatorCpu > 0.9) {
    ctx.warnings.push(
      `${what}: the load generator used ${Math.round(generatorCpu * 100)}% of a core; the figure may be generator-bound`,
    );
  }
}

/** What the levers did between two scrapes of one app's `/metrics`. */
export interface LeverCounts {
  cacheHits: number;
  cacheLookups: number;
  coalesced: number;
  coalesceRequests: number;
  batchItems: number;
  batches: number;
}

/**
 * Reads only the series of the levers `preset` has on: after load through an enabled
 * lever its series must exist (a missing one is an error, not a zero).
 */
export function leverCounts(preset: PresetName, before: Samples, after: Samples): LeverCounts {
  const levers = resolveLevers(preset);
  const grown = (on: boolean, name: string, where: Record<string, string> = {}) =>
    on ? delta(before, after, name, where) : 0;
  const cache = levers.cache.enabled && levers.cache.level !== 'edge';
  const coalesce = levers.coalesce.enabled;
  const batch = levers.batch.enabled;
  return {
    cacheHits: grown(cache, 'dataflow_cache_lookups_total', { dataflow_cache_result: 'hit' }),
    cacheLookups: grown(cache, 'dataflow_cache_lookups_total'),
    coalesced:
      grown(coalesce, 'dataflow_coalesce_requests_total', { dataflow_coalesce_role: 'follower' }) +
      grown(coalesce, 'dataflow_coalesce_requests_total', { dataflow_coalesce_role: 'window' }),
    coalesceRequests: grown(coalesce, 'dataflow_coalesce_requests_total'),
    batchItems: grown(batch, 'dataflow_batch_size_sum'),
    batches: grown(batch, 'dataflow_batch_size_count'),
  };
}

/** Server-side lever figures (only for the levers the preset has on). */
export function leverFigures(
  base: Pick<Figure, 'suite' | 'scenario' | 'preset'>,
  counts: readonly LeverCounts[],
): Figure[] {
  const total = (key: keyof LeverCounts) => counts.reduce((a, c) => a + c[key], 0);
  const figures: Figure[] = [];
  const pct = (part: number, whole: number) => Math.round((1000 * part) / whole) / 10;
  if (total('cacheLookups') > 0) {
    figures.push({
      ...base,
      metric: 'server cache hit ratio',
      value: pct(total('cacheHits'), total('cacheLookups')),
      unit: '%',
      samples: total('cacheLookups'),
      note: 'dataflow.cache.lookups during the measured load',
    });
  }
  if (total('coalesceRequests') > 0) {
    figures.push({
      ...base,
      metric: 'coalesced share',
      value: pct(total('coalesced'), total('coalesceRequests')),
      unit: '%',
      samples: total('coalesceRequests'),
      note: 'followers and window hits among coalescable requests (dataflow.coalesce.requests)',
    });
  }
  if (total('batches') > 0) {
    figures.push({
      ...base,
      metric: 'mean batch size',
      value: Math.round((10 * total('batchItems')) / total('batches')) / 10,
      unit: 'keys',
      samples: total('batches'),
      note: 'dataflow.batch.size',
    });
  }
  return figures;
}
