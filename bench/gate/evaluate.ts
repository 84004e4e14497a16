import { cpus } from 'node:os';
import {
  type Budget,
  CAPACITY_METRICS,
  DETERMINISTIC_METRICS,
  type DeterministicMetric,
  type GateMetric,
  MACHINE_CLASSES,
  METRIC_LABELS,
  TIMING_METRICS,
  type TimingMetric,
} from '../budgets.ts';
import {
  type Direction,
  decide,
  median,
  minSamples,
  pairedBootstrapRatio,
  pooledBootstrapRatio,
  select,
} from '../stats.ts';
import { capacityEstimate } from './capacity.ts';
import type { GateOptions, GateReport, GateRow, Measured } from './types.ts';

const DIRECTION: Record<TimingMetric, Direction> = {
  p50: 'lower-is-better',
  p95: 'lower-is-better',
  p99: 'lower-is-better',
  rps: 'higher-is-better',
  error_rate: 'lower-is-better',
  vs_bare: 'higher-is-better',
  cpu_us: 'lower-is-better',
};

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
    // only entries with an overhead budget measure the bare anchor
    if (metric === 'vs_bare' && budget.absolute.minVsBare === undefined) continue;
    const percentile = metric === 'p50' || metric === 'p95' || metric === 'p99';
    const q = percentile ? Number(metric.slice(1)) / 100 : 0;
    const headValues = measured.rounds.head.map((r) => r[metric]);
    const baseValues = measured.rounds.base.map((r) => r[metric]);
    // percentiles pool every request of a side: the check is on that count
    const fewest = percentile
      ? Math.min(pooledCount('head'), ...(relative ? [pooledCount('base')] : []))
      : Math.min(...measured.rounds.head.map((r) => r.requests));
    const needed = percentile ? minSamples(metric, 'gate') : 1;
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
        : metric === 'cpu_us'
          ? // a process's own speed shows in its CPU per answer: resample blocks too
            pairedBootstrapRatio(baseValues, headValues, {
              blocks: measured.rounds.head.map((r) => r.block ?? 0),
            })
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
    } else if (metric === 'cpu_us') {
      // no absolute budget: CPU time per answer is a property of the machine as much as the app
      row(metric, {
        base: null,
        head: round3(median(headValues)),
        ratio: null,
        interval: null,
        budget: 'vs base only',
        verdict: 'skipped',
        note: 'compared with a base: make gate BASE=<ref>',
      });
    } else {
      const value = percentile ? pooled('head', q) : median(headValues);
      const abs = budget.absolute;
      const higherIsBetter = DIRECTION[metric] === 'higher-is-better';
      const limit =
        metric === 'rps'
          ? abs.minRps
          : metric === 'vs_bare'
            ? abs.minVsBare!
            : metric === 'error_rate'
              ? abs.maxErrorRate
              : abs.latencyMs[metric];
      const worse = higherIsBetter ? value < limit : value > limit;
      const cls = abs.machineClass;
      row(metric, {
        base: null,
        head: round3(value),
        ratio: null,
        interval: null,
        budget: `${higherIsBetter ? '≥' : '≤'} ${limit} (${cls})`,
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
  if (relative && options.timing) {
    for (const metric of CAPACITY_METRICS) {
      if (!options.metrics.includes(metric)) continue;
      if (measured.capacity.length === 0) {
        row(metric, { ...NO_VALUE, budget: '', verdict: 'skipped', note: 'no steps measured' });
        continue;
      }
      const maxRegression = budget.relative.maxRegression;
      try {
        const estimate = capacityEstimate(metric, measured.capacity);
        row(metric, {
          base: round3(estimate.base),
          head: round3(estimate.head),
          ratio: round3(estimate.ratio),
          interval: [round3(estimate.low), round3(estimate.high)],
          budget: `−${Math.round(maxRegression * 100)}% vs base`,
          verdict: decide(estimate, 'higher-is-better', maxRegression),
          ...(estimate.failedDraws > 0
            ? { note: `${estimate.failedDraws} bootstrap fits failed, left out` }
            : {}),
        });
      } catch (error) {
        // a fit that cannot be made (a side with no throughput) decides nothing
        row(metric, {
          ...NO_VALUE,
          budget: '',
          verdict: 'insufficient samples',
          note: (error as Error).message,
        });
      }
    }
  }
  return rows;
}

const NO_VALUE = { base: null, head: null, ratio: null, interval: null } as const;

const round3 = (x: number) => Math.round(x * 1000) / 1000;

export function machineInfo(): GateReport['machine'] {
  const platform = `${process.platform}-${process.arch}`;
  const n = cpus().length;
  const model = cpus()[0]?.model ?? '';
  const matches = Object.entries(MACHINE_CLASSES)
    .filter(([, c]) => c.cpus === n && c.platform === platform && model.includes(c.cpuModel))
    .map(([name]) => name);
  return { cpus: n, platform, cpuModel: model, matches };
}
