import { z } from 'zod';
import { SCENARIO_NAMES, SCENARIOS, type ScenarioName } from '../load/scenarios.ts';
import { PRESET_NAMES, type PresetName } from '../system/levers/presets.ts';

/**
 * The latency budgets: one file, read by the regression gate (`make gate`), the k6
 * thresholds (`make k6`) and the dashboards' SLO lines (`sloLines()`). Change a budget
 * here, in a commit of its own, with the measurement that justifies it.
 *
 * Three kinds of limit per scenario x preset:
 * - deterministic ceilings (DB queries per request, DB round trips per page, response
 *   bytes): the same on every machine, gated exactly; in `make gate BASE=…` the head
 *   may also not exceed the base by even one;
 * - absolute timing budgets (latency percentiles, error rate, throughput floor): only
 *   meaningful on the machine class they were set for; elsewhere they are reported,
 *   not gated;
 * - relative budgets (`make gate BASE=…`): the head may not be worse than the base by
 *   more than `maxRegression`, decided with a confidence interval (see `stats.ts`).
 *   Server CPU per request (`cpu_us`) is only relative: the CPU the server process used in
 *   a round (Linux `/proc`) over its answers. It moves with what the app does, not with
 *   the load generator's share of the machine, so it is the steadier figure of an A/B.
 */
export const TIMING_METRICS = [
  'p50',
  'p95',
  'p99',
  'rps',
  'error_rate',
  'vs_bare',
  'cpu_us',
] as const;
export const DETERMINISTIC_METRICS = [
  'queries_cold',
  'queries_warm',
  'page_round_trips',
  'response_bytes',
] as const;
/**
 * Capacity, head vs base only: the Universal Scalability Law fitted to a step load of
 * each side (`bench/capacity/usl.ts`), steps interleaved level by level. Asked for by
 * name (`METRICS=x_max,n_star`): the steps take longer than the latency rounds.
 */
export const CAPACITY_METRICS = ['x_max', 'n_star'] as const;
/**
 * Of the build, once per run (not per entry): the Worker bundle `wrangler deploy` uploads,
 * and the CPU its startup (parse and global scope) takes.
 */
export const BUILD_METRICS = ['worker_bundle_gzip', 'worker_startup_ms'] as const;
export const GATE_METRICS = [
  ...TIMING_METRICS,
  ...DETERMINISTIC_METRICS,
  ...CAPACITY_METRICS,
  ...BUILD_METRICS,
] as const;
/**
 * What `make gate` checks when METRICS is not given: every timing metric (`cpu_us` among
 * them since two calibrations here, 2026-12-02, gave it no false alarm in 20 unchanged
 * runs and caught a 10% regression in 17 of 20; docs/measurements.md), the deterministic
 * ones and the Worker bundle. Capacity is asked for by name.
 */
export const DEFAULT_GATE_METRICS = [
  ...TIMING_METRICS,
  ...DETERMINISTIC_METRICS,
  ...BUILD_METRICS,
] as const;

/**
 * The Worker bundle, gzip-compressed as Cloudflare counts it (`wrangler deploy --dry-run`).
 * Cloudflare refuses more than 3 MB on the free plan and 10 MB on paid ones; this ceiling
 * sits far below, so a dependency that drags a large tree into the Worker fails the gate
 * long before a deploy would (335 KiB on 2026-12-02).
 */
export const WORKER_BUNDLE_GZIP_MAX_BYTES = 512 * 1024;
/**
 * The Worker's startup: the CPU workerd spends parsing the bundle and running its global
 * scope before the first request, from `wrangler check startup`'s profile (local workerd,
 * offline). Cloudflare refuses a Worker whose startup takes more than 1 s (400 ms until
 * October 2025); this machine measures 71-100 ms (2026-12-03). The ceiling leaves a
 * slower host its room and stops a dependency that does heavy work at import.
 */
export const WORKER_STARTUP_MAX_MS = 400;
export type TimingMetric = (typeof TIMING_METRICS)[number];
export type DeterministicMetric = (typeof DETERMINISTIC_METRICS)[number];
export type CapacityMetric = (typeof CAPACITY_METRICS)[number];
export type GateMetric = (typeof GATE_METRICS)[number];

export const METRIC_LABELS: Record<GateMetric, { label: string; unit: string }> = {
  p50: { label: 'latency p50', unit: 'ms' },
  p95: { label: 'latency p95', unit: 'ms' },
  p99: { label: 'latency p99', unit: 'ms' },
  rps: { label: 'throughput', unit: 'req/s' },
  error_rate: { label: 'error rate', unit: '%' },
  vs_bare: { label: 'throughput ÷ bare node:http', unit: 'x' },
  cpu_us: { label: 'server CPU per request', unit: 'µs' },
  queries_cold: { label: 'DB queries/request, cold', unit: 'queries' },
  queries_warm: { label: 'DB queries/request, warm', unit: 'queries' },
  page_round_trips: { label: 'DB round trips per page', unit: 'round trips' },
  response_bytes: { label: 'response bytes', unit: 'B' },
  x_max: { label: 'X_max, USL fit of a step load', unit: 'req/s' },
  worker_bundle_gzip: { label: 'Worker bundle, gzip (wrangler deploy --dry-run)', unit: 'B' },
  worker_startup_ms: { label: 'Worker startup CPU (wrangler check startup)', unit: 'ms' },
  n_star: { label: 'N*, concurrency of peak throughput', unit: 'in flight' },
};

/**
 * Machines absolute timing budgets are set for; a machine matches on CPU count,
 * platform and CPU model (a substring of `os.cpus()[0].model`). Add your CI runner's
 * class, with budgets measured there, rather than loosening these.
 */
export const MACHINE_CLASSES = {
  'ref-2core': {
    description: 'Debian 12, 2 shared AMD EPYC vCPUs, 24 GiB, Node 20 (this project CI machine)',
    cpus: 2,
    platform: 'linux-x64',
    cpuModel: 'AMD EPYC',
  },
} as const;
export type MachineClass = keyof typeof MACHINE_CLASSES;

const ms = z.number().positive();
const count = z.number().int().min(0);
const budgetSchema = z.strictObject({
  scenario: z.enum(SCENARIO_NAMES),
  preset: z.enum(PRESET_NAMES),
  /** Whether `make gate` measures timing for this entry (about 30 s each with BASE). */
  timed: z.boolean(),
  /** The closed-model load of a timing round: connections. 1 = service time, no queueing. */
  connections: z.number().int().min(1).max(256),
  absolute: z.strictObject({
    machineClass: z.enum(Object.keys(MACHINE_CLASSES) as [MachineClass, ...MachineClass[]]),
    latencyMs: z.strictObject({ p50: ms, p95: ms, p99: ms }),
    /** Percent of answers that may have an unexpected status. */
    maxErrorRate: z.number().min(0).max(100),
    minRps: z.number().positive(),
    /**
     * The app's own overhead: throughput ÷ a bare `node:http` hello measured right before
     * it in every round, same connections. Entries without it measure no anchor.
     */
    minVsBare: z.number().gt(0).lt(2).optional(),
  }),
  deterministic: z.strictObject({
    queriesCold: count,
    queriesWarm: count,
    pageRoundTrips: count.optional(),
    responseBytes: count,
  }),
  relative: z.strictObject({
    /** Minimum effect size: a head worse than the base by more than this fraction fails. */
    maxRegression: z.number().gt(0).lt(1),
  }),
});
export type Budget = z.infer<typeof budgetSchema>;

export const BUDGETS: Budget[] = [
  {
    scenario: 'members',
    preset: 'recommended',
    timed: true,
    connections: 1,
    absolute: {
      machineClass: 'ref-2core',
      latencyMs: { p50: 3, p95: 5, p99: 12 },
      maxErrorRate: 0,
      minRps: 300,
      // measured 0.37 at one connection (rounds 0.25-0.57), 2026-12-01: a floor, not a goal
      minVsBare: 0.25,
    },
    deterministic: { queriesCold: 1, queriesWarm: 0, pageRoundTrips: 6, responseBytes: 14829 },
    relative: { maxRegression: 0.05 },
  },
  {
    scenario: 'members',
    preset: 'batch',
    timed: false,
    connections: 1,
    absolute: {
      machineClass: 'ref-2core',
      latencyMs: { p50: 40, p95: 80, p99: 150 },
      maxErrorRate: 0,
      minRps: 20,
    },
    deterministic: { queriesCold: 2, queriesWarm: 2, responseBytes: 14829 },
    relative: { maxRegression: 0.05 },
  },
  {
    scenario: 'members',
    preset: 'baseline',
    timed: false,
    connections: 1,
    absolute: {
      machineClass: 'ref-2core',
      latencyMs: { p50: 60, p95: 120, p99: 200 },
      maxErrorRate: 0,
      minRps: 10,
    },
    deterministic: { queriesCold: 52, queriesWarm: 52, responseBytes: 14829 },
    relative: { maxRegression: 0.05 },
  },
  {
    scenario: 'projects-mixed',
    preset: 'recommended',
    timed: true,
    connections: 1,
    absolute: {
      machineClass: 'ref-2core',
      latencyMs: { p50: 8, p95: 20, p99: 40 },
      maxErrorRate: 0,
      minRps: 100,
    },
    deterministic: { queriesCold: 1, queriesWarm: 0, responseBytes: 272 },
    relative: { maxRegression: 0.05 },
  },
  {
    scenario: 'health',
    preset: 'recommended',
    timed: true,
    connections: 1,
    absolute: {
      machineClass: 'ref-2core',
      latencyMs: { p50: 1, p95: 2, p99: 5 },
      maxErrorRate: 0,
      minRps: 2000,
      // measured 0.62 at one connection (rounds 0.58-0.75), 2026-12-01
      minVsBare: 0.45,
    },
    deterministic: { queriesCold: 0, queriesWarm: 0, responseBytes: 15 },
    relative: { maxRegression: 0.05 },
  },
];

export class BudgetsError extends Error {
  override readonly name = 'BudgetsError';
}

/** Checks a budgets list; the message names the entry and the field. */
export function validateBudgets(budgets: unknown): Budget[] {
  const parsed = z.array(budgetSchema).min(1).safeParse(budgets);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const [index, ...field] = issue.path;
    const entry = Array.isArray(budgets) ? (budgets[index as number] as Partial<Budget>) : {};
    throw new BudgetsError(
      `budget #${String(index)} (${entry?.scenario ?? '?'} / ${entry?.preset ?? '?'}) ${field.join('.')}: ${issue.message}`,
    );
  }
  const seen = new Set<string>();
  for (const b of parsed.data) {
    const key = `${b.scenario}/${b.preset}`;
    if (seen.has(key)) throw new BudgetsError(`budget ${key} is defined twice`);
    seen.add(key);
  }
  return parsed.data;
}

export function budgetFor(scenario: ScenarioName, preset: PresetName): Budget | undefined {
  return BUDGETS.find((b) => b.scenario === scenario && b.preset === preset);
}

/**
 * The dashboards' SLO lines: one horizontal threshold per latency budget of the
 * production preset, with the PromQL of the series it belongs on (seconds, as
 * `http_server_request_duration` is exported). Dashboards as code read these.
 */
export function sloLines(preset: PresetName = 'recommended') {
  return BUDGETS.filter((b) => b.preset === preset).flatMap((b) => {
    const route = SCENARIOS[b.scenario].route;
    return (['p50', 'p95', 'p99'] as const).map((q) => {
      const quantile = Number(q.slice(1)) / 100;
      return {
        scenario: b.scenario,
        route,
        quantile,
        seconds: b.absolute.latencyMs[q] / 1000,
        machineClass: b.absolute.machineClass,
        label: `${b.scenario} ${q} budget (${b.absolute.machineClass})`,
        promql: `histogram_quantile(${quantile}, sum by (le) (rate(http_server_request_duration_bucket{http_route="${route}"}[5m])))`,
      };
    });
  });
}
