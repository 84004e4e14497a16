import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { benchSetup } from '../load/bench-setup.ts';
import { runLoad, sendOnce } from '../load/generator.ts';
import { SCENARIOS, type ScenarioVars } from '../load/scenarios.ts';
import { type ServerProcess, startServerProcess } from '../load/servers.ts';
import {
  BUDGETS,
  type Budget,
  DETERMINISTIC_METRICS,
  type DeterministicMetric,
  GATE_METRICS,
  type GateMetric,
  MACHINE_CLASSES,
  METRIC_LABELS,
  TIMING_METRICS,
  type TimingMetric,
  validateBudgets,
} from './budgets.ts';
import { scrape, sum } from './prometheus-text.ts';
import {
  type Direction,
  decide,
  median,
  pairedBootstrapRatio,
  pooledBootstrapRatio,
  type SamplePair,
  select,
  type Verdict,
} from './stats.ts';

/**
 * The regression gate. `make gate`: the current tree against the absolute budgets.
 * `make gate BASE=<ref>`: the base built in a temporary git worktree and the head run
 * side by side, interleaved, on copies of one seeded database; every metric decided
 * as `stats.ts` states. Deterministic figures are probed on a fresh server (cold cache)
 * and gated exactly.
 */
export interface GateOptions {
  /** A git ref: relative mode. Absent: absolute budgets only. */
  base?: string;
  /** Blocks of fresh base and head processes. */
  blocks: number;
  /** Interleaved rounds per side and block (ABBA order). */
  rounds: number;
  roundSec: number;
  /** Measured load before the first round of each side, excluded. */
  warmupSec: number;
  metrics: readonly GateMetric[];
  budgets: readonly Budget[];
  /** false: deterministic metrics only (no timing rounds): what CI runs. */
  timing: boolean;
  /** Accept uncommitted changes to bench/budgets.ts. */
  allowDirtyBudgets: boolean;
}

/** Bad input or an unusable environment: the CLI prints it and exits 2. */
export class GateUsageError extends Error {
  override readonly name = 'GateUsageError';
  constructor(
    readonly kind: 'usage' | 'environment',
    message: string,
  ) {
    super(message);
  }
}

export const GATE_SCHEMA = 'dataflow.gate/v1';

export interface GateRow {
  entry: string;
  metric: GateMetric;
  label: string;
  unit: string;
  base: number | null;
  head: number | null;
  /** head / base (relative mode). */
  ratio: number | null;
  interval: [number, number] | null;
  budget: string;
  verdict: Verdict;
  note?: string;
}

export interface GateReport {
  schema: typeof GATE_SCHEMA;
  mode: 'absolute' | 'relative';
  startedAt: string;
  elapsedSec: number;
  base: { ref: string; sha: string } | null;
  head: { sha: string; dirty: boolean };
  machine: { cpus: number; platform: string; cpuModel: string; matches: string[] };
  settings: Omit<GateOptions, 'budgets'> & { entries: string[] };
  method: string;
  rows: GateRow[];
  /** Per entry and side: each round's timing values, for anyone re-deciding. */
  rounds: Record<string, Record<string, RoundValues[]>>;
  passed: boolean;
}

export const METHOD =
  'Blocks of fresh base and head processes, interleaved rounds (ABBA) in each; latency percentiles over every request ' +
  'of a side (pooled), estimate = pooled head/base ratio with a 95% hierarchical bootstrap CI (blocks, then pairs; seeded); ' +
  'throughput: median of paired round ratios, bootstrap CI over pairs. Regression when the estimate is worse ' +
  'than the budget maxRegression AND the whole CI is on the worse side of 1. Deterministic figures: ' +
  'exact (head > base or head > ceiling fails).';

/** Pooled requests per side needed to decide a percentile (about 50 beyond p99). */
export const MIN_SAMPLES: Record<'p50' | 'p95' | 'p99', number> = {
  p50: 100,
  p95: 1000,
  p99: 5000,
};

const DIRECTION: Record<TimingMetric, Direction> = {
  p50: 'lower-is-better',
  p95: 'lower-is-better',
  p99: 'lower-is-better',
  rps: 'higher-is-better',
  error_rate: 'lower-is-better',
};

export interface Side {
  name: 'base' | 'head';
  /** Checkout the app runs from. */
  cwd: string;
  /** Extra environment (the calibration knob). */
  env?: Record<string, string>;
}

/** One round of one side: its timing values and how many requests they rest on. */
export type RoundValues = Record<TimingMetric, number> & { requests: number; block?: number };

export interface Measured {
  deterministic: Record<'base' | 'head', Partial<Record<DeterministicMetric, number>>>;
  /** Per-round values (reported in gate.json). */
  rounds: Record<'base' | 'head', RoundValues[]>;
  /** Every latency of every round, paired (not reported: the pooled percentiles use them). */
  pairs: SamplePair[];
}

export interface GateHooks {
  progress?: (line: string) => void;
  signal?: AbortSignal;
}

/** Checks what can be checked before anything runs. */
export function checkGateInputs(options: GateOptions): void {
  try {
    validateBudgets(options.budgets);
  } catch (error) {
    throw new GateUsageError('usage', (error as Error).message);
  }
  if (!options.allowDirtyBudgets) {
    const dirty = git(['status', '--porcelain', '--', 'bench/budgets.ts']).trim();
    if (dirty) {
      throw new GateUsageError(
        'usage',
        'bench/budgets.ts has uncommitted changes: commit the budget change first (or ALLOW_DIRTY_BUDGETS=1 to try it)',
      );
    }
  }
  if (options.base !== undefined) resolveCommit(options.base);
}

export function resolveCommit(ref: string): string {
  if (!/^[\w./~^@{}-]+$/.test(ref) || ref.startsWith('-')) {
    throw new GateUsageError('usage', `BASE=${JSON.stringify(ref)} is not a git ref`);
  }
  try {
    return git(['rev-parse', '--verify', '--quiet', `${ref}^{commit}`]).trim();
  } catch {
    throw new GateUsageError(
      'usage',
      `BASE=${JSON.stringify(ref)} is not a commit in this repository`,
    );
  }
}

export async function runGate(options: GateOptions, hooks: GateHooks = {}): Promise<GateReport> {
  checkGateInputs(options);
  const progress = hooks.progress ?? (() => {});
  const started = new Date();
  const t0 = performance.now();
  const cleanups: Array<() => void | Promise<void>> = [];
  const machine = machineInfo();
  try {
    let base: { ref: string; sha: string; dir: string } | undefined;
    if (options.base !== undefined) {
      const sha = resolveCommit(options.base);
      progress(`base: ${options.base} (${sha.slice(0, 10)}) in a temporary worktree`);
      const dir = prepareWorktree(sha, progress);
      cleanups.push(() => removeWorktree(dir));
      base = { ref: options.base, sha, dir };
    }
    const fixture = await seededDatabase(cleanups);
    const rows: GateRow[] = [];
    const allRounds: GateReport['rounds'] = {};
    for (const budget of options.budgets) {
      const entry = `${budget.scenario}/${budget.preset}`;
      const sides: Side[] = base
        ? [
            { name: 'base', cwd: base.dir },
            { name: 'head', cwd: process.cwd() },
          ]
        : [{ name: 'head', cwd: process.cwd() }];
      const measured = await measureEntry(budget, sides, fixture, options, hooks);
      allRounds[entry] = measured.rounds;
      rows.push(...evaluate(budget, measured, options, machine.matches, base !== undefined));
    }
    return {
      schema: GATE_SCHEMA,
      mode: base ? 'relative' : 'absolute',
      startedAt: started.toISOString(),
      elapsedSec: Math.round((performance.now() - t0) / 100) / 10,
      base: base ? { ref: base.ref, sha: base.sha } : null,
      head: {
        sha: git(['rev-parse', 'HEAD']).trim(),
        dirty: git(['status', '--porcelain']) !== '',
      },
      machine,
      settings: {
        ...(options.base ? { base: options.base } : {}),
        blocks: options.blocks,
        rounds: options.rounds,
        roundSec: options.roundSec,
        warmupSec: options.warmupSec,
        metrics: options.metrics,
        timing: options.timing,
        allowDirtyBudgets: options.allowDirtyBudgets,
        entries: options.budgets.map((b) => `${b.scenario}/${b.preset}`),
      },
      method: METHOD,
      rows,
      rounds: allRounds,
      passed: !rows.some((r) => r.verdict === 'regression'),
    };
  } finally {
    for (const cleanup of cleanups.reverse()) await Promise.resolve(cleanup()).catch(() => {});
  }
}

export interface SeededFixture {
  /** The seeded template; every server gets its own copy. */
  dbFile: string;
  setup: Awaited<ReturnType<typeof benchSetup>>;
  copy(): string;
}

/** One freshly seeded bench database per gate run: every server starts from the same data. */
export async function seededDatabase(
  cleanups: Array<() => void | Promise<void>>,
): Promise<SeededFixture> {
  const dir = mkdtempSync(join(tmpdir(), 'gate-db-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const dbFile = join(dir, 'seed.db');
  const setup = await benchSetup(`file:${dbFile}`);
  let copies = 0;
  return {
    dbFile,
    setup,
    copy() {
      const file = join(dir, `server-${++copies}.db`);
      copyFileSync(dbFile, file);
      return file;
    },
  };
}

/**
 * Measures one budget entry. `blocks` times: fresh servers for every side (started
 * together), the deterministic probe on the first block's fresh processes (cold
 * caches), a warm-up, then `rounds` timing rounds per side interleaved ABBA. Fresh
 * processes per block, because a process has a speed of its own (see `stats.ts`).
 */
export async function measureEntry(
  budget: Budget,
  sides: readonly Side[],
  fixture: SeededFixture,
  options: Pick<GateOptions, 'blocks' | 'rounds' | 'roundSec' | 'warmupSec' | 'timing' | 'metrics'>,
  hooks: GateHooks = {},
): Promise<Measured> {
  const progress = hooks.progress ?? (() => {});
  const scenario = SCENARIOS[budget.scenario];
  const { setup } = fixture;
  const entry = `${budget.scenario}/${budget.preset}`;
  const measured: Measured = {
    deterministic: { base: {}, head: {} },
    rounds: { base: [], head: [] },
    pairs: [],
  };
  const timed = options.timing && budget.timed && options.metrics.some(isTiming);
  const blocks = timed ? options.blocks : 1;
  for (let block = 0; block < blocks; block++) {
    const servers = new Map<Side['name'], { server: ServerProcess; vars: ScenarioVars }>();
    try {
      progress(
        `${entry}: block ${block + 1}/${blocks}, starting ${sides.map((x) => x.name).join(' and ')}`,
      );
      await Promise.all(
        sides.map(async (side) => {
          const server = await startServerProcess(
            {
              DATABASE_URL: `file:${fixture.copy()}`,
              CLERK_JWT_KEY: setup.keys.publicKey,
              DATAFLOW_PRESET: budget.preset,
              SERVER_TIMING: 'false',
              OTEL_TRACES_EXPORTER: 'none',
              ...side.env,
            },
            'system/node.ts',
            side.cwd,
          );
          servers.set(side.name, { server, vars: { orgId: setup.org.id } });
        }),
      );
      const names = sides.map((x) => x.name);
      for (const name of names) {
        const s = servers.get(name)!;
        // every block probes its fresh processes (the probe also creates the scenario's
        // setup data); the first block's figures are the ones reported
        const figures = await probe(budget, s.server.url, setup, s.vars);
        if (block === 0) measured.deterministic[name] = figures;
      }
      if (!timed) continue;
      progress(`${entry}: block ${block + 1}/${blocks}, warm-up`);
      await Promise.all(
        names.map((name) => {
          const s = servers.get(name)!;
          return round(s.server.url, s.vars, options.warmupSec);
        }),
      );
      for (let i = 0; i < options.rounds; i++) {
        if (hooks.signal?.aborted) throw new Error('interrupted');
        // ABBA: neither side always goes first (a warming or cooling machine cancels out)
        const order = i % 2 === 0 ? names : [...names].reverse();
        const got: Partial<Record<Side['name'], { values: RoundValues; samples: Float64Array }>> =
          {};
        for (const name of order) {
          progress(
            `${entry}: block ${block + 1}/${blocks}, round ${i + 1}/${options.rounds} ${name}`,
          );
          const s = servers.get(name)!;
          got[name] = await round(s.server.url, s.vars, options.roundSec);
          measured.rounds[name].push({ ...got[name]!.values, block });
        }
        if (got.base && got.head) {
          measured.pairs.push({ block, base: got.base.samples, head: got.head.samples });
        } else if (got.head) {
          measured.pairs.push({ block, base: new Float64Array(), head: got.head.samples });
        }
      }
    } finally {
      await Promise.all([...servers.values()].map((x) => x.server.stop()));
    }
  }
  return measured;

  async function round(url: string, vars: ScenarioVars, seconds: number) {
    const r = await runLoad({
      baseUrl: url,
      headers: setup.auth,
      scenario,
      vars,
      model: { kind: 'closed', connections: budget.connections },
      durationSec: seconds,
      keepSamples: true,
      ...(hooks.signal ? { signal: hooks.signal } : {}),
    });
    const values: RoundValues = {
      p50: r.latencyMs.p50,
      p95: r.latencyMs.p95,
      p99: r.latencyMs.p99,
      rps: r.rps,
      error_rate: r.requests > 0 ? (100 * r.errors) / r.requests : 100,
      requests: r.requests,
    };
    return { values, samples: r.samples ?? new Float64Array() };
  }
}

const isTiming = (m: GateMetric): m is TimingMetric =>
  (TIMING_METRICS as readonly string[]).includes(m);

/**
 * The deterministic figures of one fresh server, in a fixed order: the dashboard page
 * through `/api/batch` (cold), then the scenario's main read twice (cold, warm).
 * Counts come from the app's own per-request histogram, so background work (the
 * change-log poll) is not counted.
 */
async function probe(
  budget: Budget,
  url: string,
  setup: SeededFixture['setup'],
  vars: ScenarioVars,
): Promise<Partial<Record<DeterministicMetric, number>>> {
  const scenario = SCENARIOS[budget.scenario];
  if (scenario.setup) {
    const created = (await sendOnce(url, setup.auth, scenario.setup, vars)) as { id: string };
    vars.projectId = created.id;
  }
  const queries = async (fn: () => Promise<void>, route?: string) => {
    const where: Record<string, string> = route ? { http_route: route } : {};
    const before = sum(await scrape(url), 'dataflow_db_queries_per_request_sum', where);
    await fn();
    return sum(await scrape(url), 'dataflow_db_queries_per_request_sum', where) - before;
  };
  const out: Partial<Record<DeterministicMetric, number>> = {};
  if (budget.deterministic.pageRoundTrips !== undefined) {
    out.page_round_trips = await queries(async () => {
      await sendOnce(
        url,
        setup.auth,
        {
          name: 'dashboard page',
          method: 'POST',
          path: '/api/batch',
          body: {
            requests: [
              { id: 'me', method: 'GET', path: '/api/me' },
              { id: 'members', method: 'GET', path: `/api/orgs/${vars.orgId}/members?limit=20` },
              { id: 'projects', method: 'GET', path: `/api/orgs/${vars.orgId}/projects?limit=20` },
            ],
          },
          expect: 200,
        },
        vars,
      );
    });
  }
  const main = scenario.requests[0]!;
  let bytes = 0;
  out.queries_cold = await queries(async () => {
    bytes = JSON.stringify(await sendOnce(url, setup.auth, main, vars)).length;
  }, scenario.route);
  out.queries_warm = await queries(async () => {
    await sendOnce(url, setup.auth, main, vars);
  }, scenario.route);
  out.response_bytes = bytes;
  return out;
}

const DETERMINISTIC_BUDGET: Record<DeterministicMetric, keyof Budget['deterministic']> = {
  queries_cold: 'queriesCold',
  queries_warm: 'queriesWarm',
  page_round_trips: 'pageRoundTrips',
  response_bytes: 'responseBytes',
};

export function evaluate(
  budget: Budget,
  measured: Measured,
  options: Pick<GateOptions, 'metrics' | 'timing' | 'rounds'>,
  machineMatches: readonly string[],
  relative: boolean,
): GateRow[] {
  const entry = `${budget.scenario}/${budget.preset}`;
  const rows: GateRow[] = [];
  const row = (metric: GateMetric, fields: Omit<GateRow, 'entry' | 'metric' | 'label' | 'unit'>) =>
    rows.push({ entry, metric, ...METRIC_LABELS[metric], ...fields });

  for (const metric of DETERMINISTIC_METRICS) {
    if (!options.metrics.includes(metric)) continue;
    const ceiling = budget.deterministic[DETERMINISTIC_BUDGET[metric]];
    if (ceiling === undefined) continue;
    const head = measured.deterministic.head[metric] ?? null;
    const base = relative ? (measured.deterministic.base[metric] ?? null) : null;
    const overCeiling = head !== null && head > ceiling;
    const overBase = head !== null && base !== null && head > base;
    row(metric, {
      base,
      head,
      ratio: base ? (head ?? 0) / base : null,
      interval: null,
      budget: relative ? `≤ ${ceiling}, ≤ base` : `≤ ${ceiling}`,
      verdict: head === null ? 'skipped' : overCeiling || overBase ? 'regression' : 'pass',
      ...(overBase ? { note: `${head! - base!} more than the base (exact)` } : {}),
      ...(overCeiling && !overBase ? { note: `ceiling ${ceiling} exceeded (exact)` } : {}),
    });
  }

  const timed = options.timing && budget.timed;
  const machineOk = machineMatches.includes(budget.absolute.machineClass);
  const pooledCount = (side: 'base' | 'head') =>
    measured.pairs.reduce((n, p) => n + p[side].length, 0);
  const pooled = (side: 'base' | 'head', q: number) => {
    const all = new Float64Array(pooledCount(side));
    let n = 0;
    for (const p of measured.pairs) {
      all.set(p[side], n);
      n += p[side].length;
    }
    return select(all, n, q);
  };
  for (const metric of TIMING_METRICS) {
    if (!options.metrics.includes(metric) || !timed) continue;
    const percentile = metric === 'p50' || metric === 'p95' || metric === 'p99';
    const q = percentile ? Number(metric.slice(1)) / 100 : 0;
    const headValues = measured.rounds.head.map((r) => r[metric]);
    const baseValues = measured.rounds.base.map((r) => r[metric]);
    // percentiles pool every request of a side: the check is on that count
    const fewest = percentile
      ? Math.min(pooledCount('head'), ...(relative ? [pooledCount('base')] : []))
      : Math.min(...measured.rounds.head.map((r) => r.requests));
    const needed = percentile ? MIN_SAMPLES[metric] : 1;
    const enough = fewest >= needed;
    const tooFew = `${fewest} requests (< ${needed} needed for ${metric})`;
    if (relative) {
      const maxRegression = budget.relative.maxRegression;
      const sign = DIRECTION[metric] === 'lower-is-better' ? '+' : '−';
      if (metric === 'error_rate') {
        // rates of 0 have no ratio: any new error is a regression
        const b = median(baseValues);
        const h = median(headValues);
        row(metric, {
          base: round3(b),
          head: round3(h),
          ratio: null,
          interval: null,
          budget: '≤ base',
          verdict: h > b ? 'regression' : 'pass',
        });
        continue;
      }
      const estimate = percentile
        ? pooledBootstrapRatio(measured.pairs, q)
        : pairedBootstrapRatio(baseValues, headValues);
      row(metric, {
        base: round3(percentile ? pooled('base', q) : median(baseValues)),
        head: round3(percentile ? pooled('head', q) : median(headValues)),
        ratio: round3(estimate.ratio),
        interval: [round3(estimate.low), round3(estimate.high)],
        budget: `${sign}${Math.round(maxRegression * 100)}% vs base`,
        verdict: enough
          ? decide(estimate, DIRECTION[metric], maxRegression)
          : 'insufficient samples',
        ...(enough ? {} : { note: tooFew }),
      });
    } else {
      const value = percentile ? pooled('head', q) : median(headValues);
      const abs = budget.absolute;
      const limit =
        metric === 'rps'
          ? abs.minRps
          : metric === 'error_rate'
            ? abs.maxErrorRate
            : abs.latencyMs[metric];
      const worse = metric === 'rps' ? value < limit : value > limit;
      const cls = abs.machineClass;
      row(metric, {
        base: null,
        head: round3(value),
        ratio: null,
        interval: null,
        budget: `${metric === 'rps' ? '≥' : '≤'} ${limit} (${cls})`,
        verdict: !machineOk
          ? 'skipped'
          : !enough
            ? 'insufficient samples'
            : worse
              ? 'regression'
              : 'pass',
        ...(!machineOk
          ? {
              note: `budget set for ${cls} (${MACHINE_CLASSES[cls].description}); reported, not gated`,
            }
          : !enough
            ? { note: tooFew }
            : {}),
      });
    }
  }
  return rows;
}

const round3 = (x: number) => Math.round(x * 1000) / 1000;

function machineInfo(): GateReport['machine'] {
  const platform = `${process.platform}-${process.arch}`;
  const n = cpus().length;
  const model = cpus()[0]?.model ?? '';
  const matches = Object.entries(MACHINE_CLASSES)
    .filter(([, c]) => c.cpus === n && c.platform === platform && model.includes(c.cpuModel))
    .map(([name]) => name);
  return { cpus: n, platform, cpuModel: model, matches };
}

function git(args: string[], cwd?: string): string {
  return execFileSync('git', args, {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(cwd ? { cwd } : {}),
  });
}

/**
 * The base checkout: a detached worktree. Its dependencies are the head's when the
 * lockfiles match (a symlink, seconds); otherwise `npm ci` there.
 */
function prepareWorktree(sha: string, progress: (line: string) => void): string {
  const dir = mkdtempSync(join(tmpdir(), 'gate-base-'));
  try {
    git(['worktree', 'add', '--detach', '--force', dir, sha]);
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw new GateUsageError(
      'environment',
      `git worktree add failed: ${(error as { stderr?: string }).stderr ?? (error as Error).message}`,
    );
  }
  if (!existsSync(join(dir, 'system/node.ts'))) {
    removeWorktree(dir);
    throw new GateUsageError('usage', `the base ${sha.slice(0, 10)} has no system/node.ts to run`);
  }
  const sameLock =
    existsSync(join(dir, 'package-lock.json')) &&
    readFileSync(join(dir, 'package-lock.json'), 'utf8') ===
      readFileSync('package-lock.json', 'utf8');
  if (sameLock) {
    symlinkSync(resolve('node_modules'), join(dir, 'node_modules'), 'dir');
  } else {
    progress('base: dependencies differ from the head; npm ci in the worktree');
    execFileSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: dir, stdio: 'ignore' });
  }
  return dir;
}

function removeWorktree(dir: string) {
  try {
    git(['worktree', 'remove', '--force', dir]);
  } catch {
    rmSync(dir, { recursive: true, force: true });
    git(['worktree', 'prune']);
  }
}

/** Parses `make gate` variables; unknown names or nonsense numbers are usage errors. */
export function gateOptionsFromEnv(env: Record<string, string | undefined>): GateOptions {
  const num = (name: string, fallback: number, min: number, max: number) => {
    const raw = env[name];
    if (raw === undefined || raw === '') return fallback;
    const value = Number(raw);
    if (!Number.isFinite(value) || value < min || value > max) {
      throw new GateUsageError(
        'usage',
        `${name}=${JSON.stringify(raw)} must be a number from ${min} to ${max}`,
      );
    }
    return value;
  };
  const list = (name: string) =>
    (env[name] ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
  const metrics = list('METRICS');
  for (const m of metrics) {
    if (!(GATE_METRICS as readonly string[]).includes(m)) {
      throw new GateUsageError(
        'usage',
        `METRICS: unknown metric ${JSON.stringify(m)}; known: ${GATE_METRICS.join(', ')}`,
      );
    }
  }
  const scenarios = list('SCENARIO');
  const presets = list('PRESET');
  const budgets = BUDGETS.filter(
    (b) =>
      (scenarios.length === 0 || scenarios.includes(b.scenario)) &&
      (presets.length === 0 || presets.includes(b.preset)),
  );
  for (const s of scenarios) {
    if (!BUDGETS.some((b) => b.scenario === s)) {
      throw new GateUsageError(
        'usage',
        `SCENARIO=${JSON.stringify(s)} has no budget; budgeted: ${[...new Set(BUDGETS.map((b) => b.scenario))].join(', ')}`,
      );
    }
  }
  for (const p of presets) {
    if (!BUDGETS.some((b) => b.preset === p)) {
      throw new GateUsageError(
        'usage',
        `PRESET=${JSON.stringify(p)} has no budget; budgeted: ${[...new Set(BUDGETS.map((b) => b.preset))].join(', ')}`,
      );
    }
  }
  if (budgets.length === 0) {
    throw new GateUsageError(
      'usage',
      `no budget matches SCENARIO=${env.SCENARIO} PRESET=${env.PRESET}`,
    );
  }
  const timingRaw = env.TIMING ?? '';
  if (!['', '0', '1'].includes(timingRaw)) {
    throw new GateUsageError('usage', `TIMING=${JSON.stringify(timingRaw)} must be 0 or 1`);
  }
  return {
    ...(env.BASE ? { base: env.BASE } : {}),
    blocks: num('BLOCKS', 2, 1, 20),
    rounds: num('ROUNDS', 6, 2, 100),
    roundSec: num('ROUND_SEC', 0.75, 0.25, 60),
    warmupSec: num('WARMUP_SEC', 3, 0, 60),
    metrics: metrics.length > 0 ? (metrics as GateMetric[]) : [...GATE_METRICS],
    budgets,
    timing: timingRaw !== '0',
    allowDirtyBudgets: env.ALLOW_DIRTY_BUDGETS === '1',
  };
}
