import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { benchSetup } from '../../load/bench-setup.ts';
import type { LoadResult } from '../../load/generator.ts';
import { type ServerProcess, startServerProcess } from '../../load/servers.ts';
import type { PresetName } from '../../system/levers/presets.ts';
import type { BenchOptions, ProfileSettings } from '../config.ts';
import { type Samples, sum } from '../prometheus-text.ts';
import type { Figure } from '../results.ts';

/** What every suite gets from the runner. */
export interface SuiteContext {
  options: BenchOptions;
  settings: ProfileSettings;
  dbUrl: string;
  setup: Awaited<ReturnType<typeof benchSetup>>;
  signal: AbortSignal;
  progress: (line: string) => void;
  warnings: string[];
  /** Run at the end, also on failure or abort (servers, temp files). */
  cleanups: Array<() => Promise<void> | void>;
}

export class Aborted extends Error {}

export function checkAborted(ctx: SuiteContext) {
  if (ctx.signal.aborted) throw new Aborted();
}

/** Percentiles below these sample counts are not reported (the note says why). */
export const MIN_SAMPLES = { p95: 200, p99: 1000 } as const;

export type PresetServers = Map<PresetName, ServerProcess> & { stopAll(): Promise<void> };

/**
 * One app process per preset, each on its own copy of the bench database (writes in
 * one preset's run must not change what the next one reads), Redis when a preset
 * needs it. The suite stops them when it ends (`stopAll`), the runner's cleanups in
 * any case.
 */
export async function startPresetServers(ctx: SuiteContext, label: string): Promise<PresetServers> {
  let redis: { url: string; stop(): Promise<void> } | undefined;
  if (ctx.options.presets.includes('cache-redis')) {
    const { startRedis } = await import('../../test/support/redis.ts');
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
  ctx.progress(`${label}: starting the app with ${ctx.options.presets.join(', ')}`);
  // started together: each waits for its own /health, the runs themselves stay sequential
  await Promise.all(
    ctx.options.presets.map(async (preset) => {
      let appDbUrl = ctx.dbUrl;
      if (ctx.options.db === 'file') {
        const dir = mkdtempSync(join(tmpdir(), `bench-${label}-`));
        copyFileSync('.data/bench.db', join(dir, 'bench.db'));
        ctx.cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
        appDbUrl = `file:${join(dir, 'bench.db')}`;
      }
      const server = await startServerProcess({
        DATABASE_URL: appDbUrl,
        CLERK_JWT_KEY: ctx.setup.keys.publicKey,
        DB_MIGRATE_ON_START: 'false',
        DATAFLOW_PRESET: preset,
        SERVER_TIMING: 'false',
        ...(redisUrl ? { REDIS_URL: redisUrl } : {}),
      });
      servers.set(preset, server);
    }),
  );
  // iterate in the order the presets were given, not the order they became healthy
  const ordered = new Map(ctx.options.presets.map((p) => [p, servers.get(p)!])) as PresetServers;
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
  const pct = (
    q: 'p50' | 'p95' | 'p99',
    value: number | undefined,
  ): Pick<Figure, 'value' | 'note'> => {
    const needed = q === 'p50' ? 1 : MIN_SAMPLES[q];
    return samples >= needed
      ? { value: value === undefined ? null : Math.round(value * 100) / 100, note }
      : { value: null, note: `only ${samples} samples (< ${needed} for ${q})` };
  };
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

export function leverCounts(before: Samples, after: Samples): LeverCounts {
  const delta = (name: string, where: Record<string, string> = {}) =>
    sum(after, name, where) - sum(before, name, where);
  return {
    cacheHits: delta('dataflow_cache_lookups_total', { dataflow_cache_result: 'hit' }),
    cacheLookups: delta('dataflow_cache_lookups_total'),
    coalesced:
      delta('dataflow_coalesce_requests_total', { dataflow_coalesce_role: 'follower' }) +
      delta('dataflow_coalesce_requests_total', { dataflow_coalesce_role: 'window' }),
    coalesceRequests: delta('dataflow_coalesce_requests_total'),
    batchItems: delta('dataflow_batch_size_sum'),
    batches: delta('dataflow_batch_size_count'),
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
