import { uniformInt } from 'pure-rand/distribution/uniformInt';
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';
import type { CapacityMetric } from '../budgets.ts';
import { fitUsl, type UslFit, type UslPoint } from '../capacity/usl.ts';
import { quantile, type RatioEstimate } from '../stats.ts';

/**
 * The gate's capacity check (`METRICS=x_max,n_star`, with `BASE=`): both sides get the
 * same step load, level by level, interleaved (ABBA at every level), and the Universal
 * Scalability Law is fitted to each side's steps (`bench/capacity/usl.ts`). The estimate
 * is head ÷ base of the fitted X_max (or N*); its 95% interval comes from a stratified,
 * paired bootstrap: blocks resampled with replacement, then at every level one of its
 * rounds drawn, the same draw for both sides (they ran a few seconds apart), and both
 * sides refitted. Seeded, so the same steps always give the same verdict, which is then
 * decided as every other throughput metric (`decide` in stats.ts).
 */

/** Concurrency levels of the step load: those of `make capacity`. */
export const CAPACITY_LEVELS = [1, 2, 4, 8, 12, 16, 24, 32] as const;
/** Rounds per level and side (ABBA). */
export const CAPACITY_ROUNDS = 2;

/** One level of one round: each side's throughput, req/s. */
export interface CapacityStep {
  block: number;
  round: number;
  n: number;
  base: number;
  head: number;
}

export interface CapacityEstimate extends RatioEstimate {
  base: number;
  head: number;
  /** Bootstrap draws whose fit failed (left out of the interval). */
  failedDraws: number;
}

/**
 * N* far beyond the highest level measured (or infinite: κ = 0, no peak) is an
 * extrapolation the steps cannot tell apart from any other: it is held at twice the
 * highest level, so two sides that both peak out of range compare equal.
 */
export function boundedNStar(fit: UslFit, highestLevel: number): number {
  return Math.min(fit.nStar, 2 * highestLevel);
}

function metricOf(metric: CapacityMetric, fit: UslFit, points: readonly UslPoint[]): number {
  const highest = Math.max(...points.map((p) => p.n));
  return metric === 'x_max' ? fit.xMax : boundedNStar(fit, highest);
}

/** Bootstrap refits start from the side's full fit: a few dozen iterations settle them. */
const REFIT_ITERATIONS = 60;

export function capacityEstimate(
  metric: CapacityMetric,
  steps: readonly CapacityStep[],
  options: { iterations?: number; seed?: number; confidence?: number } = {},
): CapacityEstimate {
  if (steps.length === 0) throw new Error('no capacity steps measured');
  const side = (which: 'base' | 'head', chosen: readonly CapacityStep[]) =>
    chosen.map((s) => ({ n: s.n, x: s[which] }));
  const fits = {
    base: fitUsl(side('base', steps)),
    head: fitUsl(side('head', steps)),
  };
  const base = metricOf(metric, fits.base, side('base', steps));
  const head = metricOf(metric, fits.head, side('head', steps));
  const refit = (which: 'base' | 'head', drawn: readonly CapacityStep[]) => {
    const points = side(which, drawn);
    const fit = fitUsl(points, { start: fits[which], maxIterations: REFIT_ITERATIONS });
    return metricOf(metric, fit, points);
  };

  // strata: block -> level -> its rounds
  const blocks = new Map<number, Map<number, CapacityStep[]>>();
  for (const s of steps) {
    const levels = blocks.get(s.block) ?? new Map<number, CapacityStep[]>();
    levels.set(s.n, [...(levels.get(s.n) ?? []), s]);
    blocks.set(s.block, levels);
  }
  const blockList = [...blocks.values()];
  const iterations = options.iterations ?? 400;
  const confidence = options.confidence ?? 0.95;
  const rng = xoroshiro128plus(options.seed ?? 1);
  const ratios: number[] = [];
  let failedDraws = 0;
  for (let i = 0; i < iterations; i++) {
    const drawn: CapacityStep[] = [];
    for (let b = 0; b < blockList.length; b++) {
      const levels = blockList[uniformInt(rng, 0, blockList.length - 1)]!;
      for (const rounds of levels.values())
        drawn.push(rounds[uniformInt(rng, 0, rounds.length - 1)]!);
    }
    try {
      ratios.push(refit('head', drawn) / refit('base', drawn));
    } catch {
      failedDraws++;
    }
  }
  if (ratios.length === 0) throw new Error('every bootstrap fit failed');
  ratios.sort((a, b) => a - b);
  const tail = (1 - confidence) / 2;
  return {
    ratio: head / base,
    low: quantile(ratios, tail),
    high: quantile(ratios, 1 - tail),
    confidence,
    base,
    head,
    failedDraws,
  };
}
