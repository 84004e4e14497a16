import { PRESET_NAMES, type PresetName } from '../system/levers/presets.ts';

/**
 * What one `make bench` run does, parsed from the Makefile's variables (PROFILE, SUITE,
 * PRESET, DB, RTT) or passed by a TypeScript caller. Anything unknown or nonsensical is a
 * `BenchUsageError` naming the field and the value; the CLI exits 2 before running.
 */
export const SUITES = [
  'micro',
  'overhead',
  'members',
  'projects',
  'burst',
  'zipf',
  'webhooks',
  'ws',
  'workerd',
  'browser',
] as const;
/** Suites that run when named, and in the full profile (longer than the quick budget allows). */
const FULL_ONLY: readonly Suite[] = ['workerd', 'browser'];
export type Suite = (typeof SUITES)[number];
export const PROFILES = ['smoke', 'quick', 'full'] as const;
export type Profile = (typeof PROFILES)[number];

export interface ProfileSettings {
  /** tinybench time per task, ms. */
  microTimeMs: number;
  /** Closed-model load per preset: seconds measured, seconds of warm-up excluded. */
  loadSec: number;
  warmupSec: number;
  connections: number;
  /** Interleaved rounds per preset (medians reported). */
  rounds: number;
  /** Open-model (rate-limited) run per preset, seconds. */
  openSec: number;
  /** The projects mix gets an open-model run too (no finding reads it: `full` only in CI-sized profiles). */
  projectsOpen: boolean;
  /**
   * The overhead suite: interleaved rounds per target, seconds per round (whole seconds:
   * autocannon samples once a second), and seconds of warm-up per app target (a fresh
   * production bundle needs about three before a cache hit costs what it will; the bare
   * anchors get one).
   */
  overheadRounds: number;
  overheadSec: number;
  /**
   * Blocks of fresh processes, each with its own warm-up and `overheadRounds` rounds: a
   * process keeps a speed of its own for its life (the gate's finding, `bench/stats.ts`),
   * and with one process per target that speed reads as the target's cost.
   */
  overheadBlocks: number;
  overheadWarmupSec: number;
  /** The bare hello inside an AsyncLocalStorage as a third HTTP anchor (its CPU differs by a few %: full rounds only). */
  overheadContextAnchor: boolean;
  /**
   * Rounds of 0.5 s at one connection (µs histograms of `load/generator.ts`) for the
   * latency of the bare hello, `/health` and the cache hit, after the last block.
   */
  overheadLatencyRounds: number;
  burstRequests: number;
  /** The burst on the embedded database too (a note under the sqld verdict). */
  burstEmbedded: boolean;
  zipfOps: number;
  webhookEvents: number;
  /**
   * The embedded storm's rounds: each side (the raw commits, the HTTP ceiling, each
   * preset) takes its share of the deliveries in turn, round after round.
   */
  webhookRounds: number;
  /**
   * The driver's transports the sqld storm runs over, each into a fresh sqld: Hrana over
   * HTTP (the verdict's, and the Worker's) and over one WebSocket (a note under it).
   */
  webhookSqldTransports: ReadonlyArray<'sqld' | 'sqld-ws'>;
  /**
   * WebSocket fan-out shapes: sockets of one org x change events per second, and the
   * interleaved rounds per side (the verdict is the median of the rounds' paired ratios).
   */
  wsFanout: ReadonlyArray<{ clients: number; rate: number; rounds: number }>;
  /** Seconds per round. */
  wsSec: number;
  /** Unrecorded seconds before each side's first round (a just-started process runs cold). */
  wsFirstWarmupSec: number;
  /** Idle authenticated sockets held by one process (memory per socket). */
  wsIdleSockets: number;
  /** The paused-client run: one of `clients` sockets stops reading, `rate` events/s, `sec` s. */
  wsPaused: { clients: number; rate: number; sec: number };
}

export const PROFILE_SETTINGS: Record<Profile, ProfileSettings> = {
  // CI: every suite runs, tiny (a correctness check of the harness, not a measurement)
  smoke: {
    microTimeMs: 50,
    loadSec: 1,
    warmupSec: 0,
    connections: 4,
    rounds: 1,
    openSec: 1,
    projectsOpen: true,
    overheadRounds: 2,
    overheadSec: 1,
    overheadBlocks: 1,
    overheadWarmupSec: 1,
    overheadContextAnchor: false,
    overheadLatencyRounds: 1,
    burstRequests: 20,
    burstEmbedded: true,
    zipfOps: 200,
    webhookEvents: 200,
    webhookRounds: 1,
    webhookSqldTransports: ['sqld', 'sqld-ws'],
    wsFanout: [{ clients: 20, rate: 20, rounds: 1 }],
    wsSec: 1,
    wsFirstWarmupSec: 0.5,
    wsIdleSockets: 50,
    wsPaused: { clients: 10, rate: 50, sec: 1 },
  },
  // `make bench`: about 3 minutes on the 2-core reference machine (178-183 s per run on
  // 3 December, the noisy host's spread; in CI 158 s at 8aed87d, 235 s before). The open
  // model needs its 2 s (200 arrivals, the fewest a p95 is reported on); the overhead
  // rounds are short but paired, so their ratios carry an interval
  quick: {
    microTimeMs: 100,
    loadSec: 2,
    warmupSec: 0.5,
    connections: 16,
    rounds: 1,
    openSec: 2,
    projectsOpen: false,
    overheadRounds: 3,
    overheadSec: 1,
    overheadBlocks: 1,
    // a fresh app is steady from its fourth second: the first of the three paired rounds
    // may read dear, the median of three keeps it out
    overheadWarmupSec: 2,
    overheadContextAnchor: false,
    // some 3,000-10,000 samples per target: enough for a p99 (bench/stats.ts)
    overheadLatencyRounds: 2,
    burstRequests: 20,
    // the embedded burst is a note (identical requests barely overlap there): full runs
    burstEmbedded: false,
    zipfOps: 1500,
    webhookEvents: 1000,
    webhookRounds: 2,
    // the WebSocket transport is a note under the verdict: full runs only
    webhookSqldTransports: ['sqld'],
    wsFanout: [{ clients: 200, rate: 50, rounds: 2 }],
    wsSec: 1.5,
    wsFirstWarmupSec: 1,
    wsIdleSockets: 1000,
    wsPaused: { clients: 50, rate: 400, sec: 2 },
  },
  full: {
    microTimeMs: 1000,
    loadSec: 10,
    warmupSec: 2,
    connections: 16,
    rounds: 3,
    openSec: 10,
    projectsOpen: true,
    // short rounds: a pair's two rounds run closer in time; three blocks of fresh processes
    overheadRounds: 6,
    overheadSec: 1,
    overheadBlocks: 3,
    overheadWarmupSec: 4,
    overheadContextAnchor: true,
    overheadLatencyRounds: 6,
    burstRequests: 200,
    burstEmbedded: true,
    zipfOps: 10_000,
    webhookEvents: 10_000,
    webhookRounds: 5,
    webhookSqldTransports: ['sqld', 'sqld-ws'],
    wsFanout: [
      // a round of 200 x 50 is short and its p99 swings with the shared machine (paired
      // ratios of 2.00, 1.91 and 0.90 in one run of three rounds): more pairs, a steadier median
      { clients: 200, rate: 50, rounds: 7 },
      // a round of 1,000 x 200 drains for up to a minute on the bare server without a window
      { clients: 1000, rate: 200, rounds: 3 },
    ],
    wsSec: 4,
    wsFirstWarmupSec: 2,
    wsIdleSockets: 10_000,
    // 36,000 frames of ~190 B: past the ~4 MB the kernel holds, into the hub's high-water mark
    wsPaused: { clients: 20, rate: 600, sec: 60 },
  },
};

export interface BenchOptions {
  profile: Profile;
  suites: readonly Suite[];
  presets: readonly PresetName[];
  db: 'file' | 'sqld';
  /**
   * Round trip the relay adds between the app and the remote sqld, ms (default 10). With
   * DB=sqld the whole run measures on it; with DB=file the round-trip findings do.
   */
  rttMs: number;
  /** Where results/<run-id>/ goes. @default results */
  resultsDir: string;
  /** `CPU_PROFILE=1`: the overhead, ws and webhooks suites write a `.cpuprofile` per app process. */
  cpuProfile: boolean;
}

export class BenchUsageError extends Error {
  override readonly name = 'BenchUsageError';
}

const list = (value: string | undefined) =>
  (value ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);

function flag(field: string, value: string | undefined): boolean {
  if (value === undefined || value === '' || value === '0') return false;
  if (value === '1') return true;
  throw new BenchUsageError(`${field}=${JSON.stringify(value)} must be 0 or 1`);
}

function oneOf<T extends string>(field: string, value: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(value)) {
    throw new BenchUsageError(
      `${field}=${JSON.stringify(value)} is not one of ${allowed.join(', ')}`,
    );
  }
  return value as T;
}

/** From the Makefile's variables (empty = default). */
export function benchOptionsFromEnv(env: Record<string, string | undefined>): BenchOptions {
  const profile = oneOf('PROFILE', env.PROFILE || 'quick', PROFILES);
  const suites = list(env.SUITE).map((s) => oneOf('SUITE', s, SUITES));
  // RUNTIME=workerd: the runs that put the Worker next to Node (today the workerd suite)
  const runtime = oneOf('RUNTIME', env.RUNTIME || 'node', ['node', 'workerd'] as const);
  if (runtime === 'workerd' && suites.length === 0) suites.push('workerd');
  const presets = list(env.PRESET).map((p) => oneOf('PRESET', p, PRESET_NAMES));
  const db = oneOf('DB', env.DB || 'file', ['file', 'sqld'] as const);
  const rttRaw = env.RTT || '10';
  const rttMs = Number(rttRaw);
  if (!Number.isFinite(rttMs) || rttMs < 0 || rttMs > 1000) {
    throw new BenchUsageError(
      `RTT=${JSON.stringify(rttRaw)} must be milliseconds between 0 and 1000`,
    );
  }
  const resultsDir = env.RESULTS_DIR || 'results';
  return {
    profile,
    // the workerd and browser suites run when asked for, and in the full profile
    suites:
      suites.length > 0
        ? [...new Set(suites)]
        : SUITES.filter((s) => !FULL_ONLY.includes(s) || profile === 'full'),
    // baseline is always measured: every ratio is against it
    presets: [
      ...new Set<PresetName>(['baseline', ...(presets.length > 0 ? presets : PRESET_NAMES)]),
    ],
    db,
    rttMs,
    resultsDir,
    cpuProfile: flag('CPU_PROFILE', env.CPU_PROFILE),
  };
}
