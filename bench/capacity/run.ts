import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { BENCH_DB_FILE, benchSetup } from '../../load/bench-setup.ts';
import { runLoad } from '../../load/generator.ts';
import { startAppProcess } from '../../load/infra/server-process.ts';
import { SCENARIOS } from '../../load/scenarios.ts';
import { DEV_WEBHOOK_SECRET_FILE } from '../../system/env.ts';
import { PRESET_NAMES, type PresetName } from '../../system/levers/presets.ts';
import { BUDGETS } from '../budgets.ts';
import { renderSvg } from '../charts.ts';
import { fitUsl, instancesFor, type UslFit, usl } from './usl.ts';

/**
 * `make capacity`: a closed-model step load on the members page (limit 50, or
 * `SCENARIO=projects-mixed`, the read/write mix) at each concurrency level, per preset, on a private copy of the bench database, the app in
 * production mode; then the Universal Scalability Law fitted to the steps the load
 * generator really held. Little's law (N = X·R) is checked on every step: a step whose
 * in-flight requests fall short of N (a generator that cannot keep up) or whose
 * generator used a whole core is flagged and left out of the fit, not fitted.
 *
 * Writes `results/capacity/<run-id>/capacity.json` (schema below), `capacity.md`,
 * `capacity.html` (the fitted curves over the measured points); `results/capacity/latest`.
 */
export const CAPACITY_SCHEMA = 'dataflow.capacity/v1';

export class CapacityUsageError extends Error {
  override readonly name = 'CapacityUsageError';
}

export interface CapacityOptions {
  scenario: 'members' | 'projects-mixed';
  presets: PresetName[];
  levels: number[];
  /** Open-model rungs, as shares of the best closed-model throughput. */
  ladder: number[];
  stepSec: number;
  targetRps: number;
  headroom: number;
  resultsDir: string;
}

export function capacityOptionsFromEnv(env: Record<string, string | undefined>): CapacityOptions {
  const list = (v: string | undefined, fallback: string) =>
    (v || fallback)
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
  const presets = list(env.PRESET, 'baseline,recommended').map((p) => {
    if (!(PRESET_NAMES as readonly string[]).includes(p)) {
      throw new CapacityUsageError(`PRESET="${p}" is not one of ${PRESET_NAMES.join(', ')}`);
    }
    return p as PresetName;
  });
  const levels = list(env.LEVELS, '1,2,4,8,12,16,24,32').map((l) => {
    const n = Number(l);
    if (!(Number.isInteger(n) && n >= 1 && n <= 512)) {
      throw new CapacityUsageError(`LEVELS: "${l}" is not a concurrency between 1 and 512`);
    }
    return n;
  });
  if (!levels.includes(1))
    throw new CapacityUsageError('LEVELS must include 1 (λ is the single-client rate)');
  if (new Set(levels).size < 8) {
    throw new CapacityUsageError(
      `LEVELS needs at least 8 distinct levels; got ${new Set(levels).size}`,
    );
  }
  const number = (
    name: string,
    raw: string | undefined,
    fallback: number,
    ok: (v: number) => boolean,
  ) => {
    const value = raw === undefined || raw === '' ? fallback : Number(raw);
    if (!ok(value)) throw new CapacityUsageError(`${name}="${raw}" is out of range`);
    return value;
  };
  const scenario = env.SCENARIO || 'members';
  if (scenario !== 'members' && scenario !== 'projects-mixed') {
    throw new CapacityUsageError(`SCENARIO="${scenario}" is not one of members, projects-mixed`);
  }
  return {
    scenario,
    presets,
    levels: [...new Set(levels)].sort((a, b) => a - b),
    ladder: list(env.LADDER, '0.25,0.5,0.75,0.9,1,1.1').map((l) => {
      const share = Number(l);
      if (!(share > 0 && share <= 3)) {
        throw new CapacityUsageError(`LADDER: "${l}" is not a share of the peak between 0 and 3`);
      }
      return share;
    }),
    stepSec: number('STEP_SEC', env.STEP_SEC, 3, (v) => v >= 0.5 && v <= 120),
    targetRps: number('TARGET_RPS', env.TARGET_RPS, 5000, (v) => v > 0),
    headroom: number('HEADROOM', env.HEADROOM, 0.3, (v) => v >= 0 && v < 1),
    resultsDir: env.RESULTS_DIR || 'results',
  };
}

export interface Step {
  n: number;
  /** Throughput, req/s. */
  x: number;
  meanMs: number;
  p99Ms: number;
  errors: number;
  /** X·R ÷ N: 1 when the generator kept N requests in flight. */
  littleRatio: number;
  /** The load generator's CPU, share of one core. */
  generatorCpu: number;
  /** Why the step is left out of the fit, if it is. */
  flagged: string | null;
}

/** One rung of the open-model ladder. */
export interface LadderStep {
  /** Arrival rate offered, req/s. */
  offered: number;
  achieved: number;
  /** Latency from the scheduled send (coordinated-omission corrected), ms. */
  p50Ms: number;
  p99Ms: number;
  /** Arrivals still waiting for a connection when the rung ended. */
  notSent: number;
  errors: number;
}

export interface PresetCapacity {
  preset: PresetName;
  steps: Step[];
  ladder: LadderStep[];
  fit: UslFit | null;
  fitError: string | null;
  p99BudgetMs: number | null;
  /** The highest measured throughput whose p99 is within the budget. */
  maxRpsWithinBudget: number | null;
  instancesForTarget: number | null;
}

export interface CapacityResults {
  schema: typeof CAPACITY_SCHEMA;
  runId: string;
  startedAt: string;
  scenario: string;
  database: 'embedded file:';
  options: CapacityOptions;
  presets: PresetCapacity[];
}

/** Little's law tolerance: in-flight requests below 80% of N mean the generator fell short. */
const LITTLE_MIN = 0.8;

export function judgeStep(step: Omit<Step, 'flagged' | 'littleRatio'>): Step {
  const littleRatio = (step.x * step.meanMs) / 1000 / step.n;
  let flagged: string | null = null;
  if (step.generatorCpu > 0.9) {
    flagged = `the load generator used ${Math.round(step.generatorCpu * 100)}% of a core`;
  } else if (littleRatio < LITTLE_MIN) {
    flagged = `Little's law: X·R = ${(littleRatio * step.n).toFixed(2)} in flight, not ${step.n}`;
  } else if (step.x <= 0) {
    flagged = 'no throughput';
  }
  return { ...step, littleRatio: Math.round(littleRatio * 1000) / 1000, flagged };
}

export async function runCapacity(
  options: CapacityOptions,
  progress: (line: string) => void = () => {},
): Promise<CapacityResults> {
  const startedAt = new Date();
  const runId = `${startedAt.toISOString().replace(/[:.]/g, '-')}-capacity`;
  progress('setup: bench seed, keys');
  const setup = await benchSetup();
  const secret = readFileSync(DEV_WEBHOOK_SECRET_FILE, 'utf8').trim();
  const presets: PresetCapacity[] = [];
  for (const preset of options.presets) {
    const dir = mkdtempSync(join(tmpdir(), 'capacity-'));
    const dbFile = join(dir, 'bench.db');
    copyFileSync(BENCH_DB_FILE, dbFile);
    const server = await startAppProcess({
      NODE_ENV: 'production',
      CLERK_JWT_KEY: setup.keys.publicKey,
      CLERK_WEBHOOK_SIGNING_SECRET: secret,
      DATABASE_URL: `file:${dbFile}`,
      DATAFLOW_PRESET: preset,
      DB_MIGRATE_ON_START: 'false',
    });
    const steps: Step[] = [];
    const ladder: LadderStep[] = [];
    try {
      for (const n of options.levels) {
        progress(`capacity: ${options.scenario}, ${preset}, ${n} in flight, ${options.stepSec}s`);
        // the harness's own generator: microsecond latencies (a cache hit is sub-millisecond)
        const result = await runLoad({
          baseUrl: server.url,
          headers: setup.auth,
          scenario: SCENARIOS[options.scenario],
          vars: { orgId: setup.org.id },
          model: { kind: 'closed', connections: n },
          durationSec: options.stepSec,
          warmupSec: 0.5,
        });
        steps.push(
          judgeStep({
            n,
            x: result.rps,
            meanMs: result.latencyMs.mean,
            p99Ms: result.latencyMs.p99,
            errors: result.errors,
            generatorCpu: result.generatorCpu,
          }),
        );
      }
      // the open-model ladder: offered rates around the best closed-model throughput;
      // latency from the scheduled send (a queue the server builds is charged to it)
      const peak = Math.max(...steps.map((s) => s.x));
      for (const share of options.ladder) {
        const rate = Math.max(1, Math.round(peak * share));
        progress(
          `capacity: ${options.scenario}, ${preset}, open model ${rate} req/s, ${options.stepSec}s`,
        );
        const result = await runLoad({
          baseUrl: server.url,
          headers: setup.auth,
          scenario: SCENARIOS[options.scenario],
          vars: { orgId: setup.org.id },
          model: { kind: 'open', rate, maxInFlight: 256 },
          durationSec: options.stepSec,
          warmupSec: 0.5,
        });
        ladder.push({
          offered: rate,
          achieved: Math.round(result.rps * 10) / 10,
          p50Ms: result.latencyMs.p50,
          p99Ms: result.latencyMs.p99,
          notSent: result.dropped,
          errors: result.errors,
        });
      }
    } finally {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    }
    let fit: UslFit | null = null;
    let fitError: string | null = null;
    try {
      fit = fitUsl(steps.filter((s) => s.flagged === null).map((s) => ({ n: s.n, x: s.x })));
    } catch (error) {
      fitError = (error as Error).message;
    }
    const budget = BUDGETS.find((b) => b.scenario === options.scenario && b.preset === preset);
    const p99BudgetMs = budget?.absolute.latencyMs.p99 ?? null;
    const within = steps.filter((s) => p99BudgetMs !== null && s.p99Ms <= p99BudgetMs);
    presets.push({
      preset,
      steps,
      ladder,
      fit,
      fitError,
      p99BudgetMs,
      maxRpsWithinBudget: within.length > 0 ? Math.max(...within.map((s) => s.x)) : null,
      instancesForTarget: fit ? instancesFor(options.targetRps, fit.xMax, options.headroom) : null,
    });
  }
  return {
    schema: CAPACITY_SCHEMA,
    runId,
    startedAt: startedAt.toISOString(),
    scenario: SCENARIOS[options.scenario].description,
    database: 'embedded file:',
    options,
    presets,
  };
}

const r = (v: number, d = 1) =>
  Number.isFinite(v) ? (Math.round(v * 10 ** d) / 10 ** d).toString() : '∞';

export function renderCapacityMarkdown(results: CapacityResults): string {
  const lines = [
    `# Capacity — run ${results.runId}`,
    '',
    `${results.scenario}, ${results.database}, closed model, ${results.options.stepSec} s per level, production mode. Fit: X(N) = λN / (1 + σ(N−1) + κN(N−1)).`,
    '',
    '| preset | λ (req/s) | σ | κ | N* | X_max (req/s) | R² | p99 budget | max req/s within it | instances for ' +
      `${results.options.targetRps} req/s at ${Math.round(results.options.headroom * 100)}% headroom |`,
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const p of results.presets) {
    const f = p.fit;
    lines.push(
      `| ${p.preset} | ${f ? r(f.lambda) : '-'} | ${f ? r(f.sigma, 4) : '-'} | ${f ? f.kappa.toExponential(2) : '-'} | ${f ? r(f.nStar) : '-'} | ${f ? r(f.xMax) : '-'} | ${f ? r(f.r2, 3) : '-'} | ${p.p99BudgetMs ?? '-'} ms | ${p.maxRpsWithinBudget === null ? '-' : r(p.maxRpsWithinBudget)} | ${p.instancesForTarget ?? '-'} |`,
    );
    if (p.fitError) lines.push('', `${p.preset}: no fit: ${p.fitError}`);
  }
  lines.push(
    '',
    '## Open-model ladder (offered rate around the closed-model peak)',
    '',
    '| preset | offered req/s | achieved | p50 ms | p99 ms | not sent | errors |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
  );
  for (const p of results.presets) {
    for (const l of p.ladder) {
      lines.push(
        `| ${p.preset} | ${l.offered} | ${r(l.achieved)} | ${r(l.p50Ms, 2)} | ${r(l.p99Ms, 2)} | ${l.notSent} | ${l.errors} |`,
      );
    }
  }
  lines.push(
    '',
    '## Closed-model steps',
    '',
    '| preset | N | req/s | mean ms | p99 ms | errors | X·R ÷ N | generator CPU | left out |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
  );
  for (const p of results.presets) {
    for (const s of p.steps) {
      lines.push(
        `| ${p.preset} | ${s.n} | ${r(s.x)} | ${r(s.meanMs, 2)} | ${r(s.p99Ms)} | ${s.errors} | ${r(s.littleRatio, 2)} | ${Math.round(s.generatorCpu * 100)}% | ${s.flagged ?? ''} |`,
      );
    }
  }
  return `${lines.join('\n')}\n`;
}

async function capacityChart(results: CapacityResults): Promise<string> {
  const measured = results.presets.flatMap((p) =>
    p.steps.map((s) => ({
      preset: p.preset,
      n: s.n,
      x: s.x,
      kind: s.flagged ? 'left out' : 'measured',
    })),
  );
  const maxN = Math.max(...results.options.levels) * 1.5;
  const curve = results.presets.flatMap((p) => {
    if (!p.fit) return [];
    const model = usl(p.fit.lambda, p.fit.sigma, p.fit.kappa);
    return Array.from({ length: 60 }, (_, i) => 1 + (i * (maxN - 1)) / 59).map((n) => ({
      preset: p.preset,
      n,
      x: model(n),
    }));
  });
  return renderSvg({
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: {
      text: 'Throughput vs concurrency, USL fit',
      subtitle: `${results.scenario}, ${results.database}`,
    },
    width: 520,
    height: 300,
    layer: [
      {
        data: { values: curve },
        mark: 'line',
        encoding: {
          x: { field: 'n', type: 'quantitative', title: 'requests in flight (N)' },
          y: { field: 'x', type: 'quantitative', title: 'req/s' },
          color: { field: 'preset', type: 'nominal' },
        },
      },
      {
        data: { values: measured },
        mark: { type: 'point', filled: true },
        encoding: {
          x: { field: 'n', type: 'quantitative' },
          y: { field: 'x', type: 'quantitative' },
          color: { field: 'preset', type: 'nominal' },
          shape: { field: 'kind', type: 'nominal', title: null },
        },
      },
    ],
  });
}

/**
 * The fit as OpenMetrics with the run's timestamp (`capacity.om`), for the Capacity
 * dashboard: backfill it like `bench.om` (`promtool tsdb create-blocks-from openmetrics`).
 */
export function capacityOpenMetrics(results: CapacityResults): string {
  const at = (Date.parse(results.startedAt) / 1000).toFixed(3);
  const esc = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"');
  const lines = [
    '# TYPE dataflow_capacity gauge',
    '# HELP dataflow_capacity The Universal Scalability Law fit of a make capacity run (param: lambda, sigma, kappa, n_star, x_max, r2).',
  ];
  for (const p of results.presets) {
    if (!p.fit) continue;
    const params: Record<string, number> = {
      lambda: p.fit.lambda,
      sigma: p.fit.sigma,
      kappa: p.fit.kappa,
      n_star: p.fit.nStar,
      x_max: p.fit.xMax,
      r2: p.fit.r2,
    };
    for (const [param, value] of Object.entries(params)) {
      // κ = 0: no peak, N* is infinite (OpenMetrics writes it +Inf; the series still exists)
      const text = value === Number.POSITIVE_INFINITY ? '+Inf' : String(value);
      lines.push(
        `dataflow_capacity{run_id="${esc(results.runId)}",scenario="${esc(results.options.scenario)}",preset="${p.preset}",param="${param}"} ${text} ${at}`,
      );
    }
  }
  lines.push('# EOF', '');
  return lines.join('\n');
}

export async function writeCapacity(results: CapacityResults): Promise<string> {
  const root = join(results.options.resultsDir, 'capacity');
  const dir = join(root, results.runId);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'capacity.json'), `${JSON.stringify(results, null, 2)}\n`);
  writeFileSync(join(dir, 'capacity.om'), capacityOpenMetrics(results));
  const md = renderCapacityMarkdown(results);
  writeFileSync(join(dir, 'capacity.md'), md);
  const svg = await capacityChart(results);
  writeFileSync(join(dir, 'capacity.svg'), svg);
  writeFileSync(
    join(dir, 'capacity.html'),
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Capacity ${results.runId}</title></head><body style="font: 14px system-ui">${svg}<pre>${md.replace(/&/g, '&amp;').replace(/</g, '&lt;')}</pre></body></html>\n`,
  );
  const latest = join(root, 'latest');
  rmSync(latest, { force: true });
  symlinkSync(results.runId, latest);
  return dir;
}

async function main(): Promise<number> {
  let options: CapacityOptions;
  try {
    options = capacityOptionsFromEnv(process.env);
  } catch (error) {
    if (error instanceof CapacityUsageError) {
      console.error(`make capacity: usage error: ${error.message}`);
      return 2;
    }
    throw error;
  }
  const results = await runCapacity(options, (line) => console.error(line));
  const dir = await writeCapacity(results);
  console.log(renderCapacityMarkdown(results));
  console.log(`${dir}/capacity.json, capacity.md, capacity.html (results/capacity/latest)`);
  return 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await main();
}
