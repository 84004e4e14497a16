import { uniformInt } from 'pure-rand/distribution/uniformInt';
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';
import type { Interval } from './results.ts';

/**
 * The gate's statistics. One method, stated here and in the README:
 *
 * Base and head are measured in interleaved rounds (ABBA ABBA …), so round i of base
 * and round i of head ran about a second apart under the same machine weather. Each
 * round gives one value per metric (its p95, its req/s, …) and each pair one ratio,
 * head_i / base_i: a slow drift (a warming JIT, a noisy neighbour) hits both halves of
 * a pair and cancels. The estimate is the median of the paired ratios; its confidence
 * interval is a percentile bootstrap: resample the pairs with replacement, recompute
 * the median, take the 2.5th and 97.5th percentiles. Seeded, so the same measurements
 * always give the same verdict. (The ratio of medians across rounds was tried first:
 * it keeps the drift in, and missed injected 20% regressions on this machine.)
 */
/**
 * How many samples a percentile needs before it is reported or decided on: a
 * percentile rests on the samples beyond it, so p99 of 1,000 requests is the 10
 * slowest. The report shows a percentile with at least 10 samples beyond it; the gate
 * decides a regression only on 50 (p50: 100, p95: 1,000, p99: 5,000 pooled requests).
 * The one source for both.
 */
export const TAIL_SAMPLES = { report: 10, gate: 50 } as const;

export function minSamples(
  percentile: 'p50' | 'p95' | 'p99',
  purpose: keyof typeof TAIL_SAMPLES,
): number {
  const beyond = 1 - Number(percentile.slice(1)) / 100;
  return Math.round(TAIL_SAMPLES[purpose] / beyond);
}

/** Two decimals, as figures and ratios are reported. */
export const round2 = (x: number): number => Math.round(x * 100) / 100;

/** An estimate's interval as a figure carries it (`Figure.interval`), to two decimals. */
export const interval2 = (e: Pick<RatioEstimate, 'low' | 'high'>): Interval => ({
  low: round2(e.low),
  high: round2(e.high),
});

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Linear-interpolated quantile of sorted values, q in [0, 1]. */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

export interface RatioEstimate {
  /** median over pairs of head_i / base_i */
  ratio: number;
  low: number;
  high: number;
  confidence: number;
}

export interface BootstrapOptions {
  /** @default 4000 */
  iterations?: number;
  /** @default 0.95 */
  confidence?: number;
  /** @default 1 */
  seed?: number;
}

/**
 * `blocks`: the block of fresh processes each pair ran in. Given, the resampling is
 * hierarchical as in `pooledBootstrapRatio` (blocks, then the pairs of each chosen
 * block), so the interval carries the process-to-process spread: resampling the pairs
 * alone treats a pair of slow processes as twelve independent observations.
 */
export function pairedBootstrapRatio(
  base: readonly number[],
  head: readonly number[],
  options: BootstrapOptions & { blocks?: readonly number[] } = {},
): RatioEstimate {
  if (base.length !== head.length || base.length === 0) {
    throw new Error(`paired rounds needed: base has ${base.length}, head ${head.length}`);
  }
  const iterations = options.iterations ?? 4000;
  const confidence = options.confidence ?? 0.95;
  const rng = xoroshiro128plus(options.seed ?? 1);
  const ratios = base.map((b, i) => head[i]! / b);
  const n = ratios.length;
  const blockOf = options.blocks ?? new Array<number>(n).fill(0);
  const blocks = [...new Set(blockOf)].map((b) => ratios.filter((_, i) => blockOf[i] === b));
  const estimates = new Float64Array(iterations);
  const sample: number[] = [];
  for (let i = 0; i < iterations; i++) {
    sample.length = 0;
    for (let b = 0; b < blocks.length; b++) {
      // one block: no draw for it, so the pairs-only resampling stays what it was
      const block =
        blocks.length === 1 ? blocks[0]! : blocks[uniformInt(rng, 0, blocks.length - 1)]!;
      for (let j = 0; j < block.length; j++)
        sample.push(block[uniformInt(rng, 0, block.length - 1)]!);
    }
    estimates[i] = median(sample);
  }
  const sorted = [...estimates].sort((x, y) => x - y);
  const tail = (1 - confidence) / 2;
  return {
    ratio: median(ratios),
    low: quantile(sorted, tail),
    high: quantile(sorted, 1 - tail),
    confidence,
  };
}

export type Direction = 'lower-is-better' | 'higher-is-better';
export type Verdict = 'pass' | 'regression' | 'improvement' | 'insufficient samples' | 'skipped';

/**
 * A regression needs both: the point estimate worse than the minimum effect size, and
 * the whole confidence interval on the worse side of 1 (so noise alone rarely trips
 * it, and a change smaller than the effect size never does).
 */
export function decide(estimate: RatioEstimate, direction: Direction, minEffect: number): Verdict {
  const worse = direction === 'lower-is-better' ? estimate.ratio - 1 : 1 - estimate.ratio;
  const surelyWorse = direction === 'lower-is-better' ? estimate.low > 1 : estimate.high < 1;
  const surelyBetter = direction === 'lower-is-better' ? estimate.high < 1 : estimate.low > 1;
  if (worse > minEffect && surelyWorse) return 'regression';
  if (-worse > minEffect && surelyBetter) return 'improvement';
  return 'pass';
}

/** One interleaved pair of rounds: every latency (ms) of each side, and its process block. */
export interface SamplePair {
  block: number;
  base: Float64Array;
  head: Float64Array;
}

/**
 * Latency percentiles over pooled rounds, for the gate's timing decisions.
 *
 * A round's own p95 rests on a few dozen requests and a noisy machine makes it jump
 * (calibration saw single-pair p95 ratios from 0.35 to 2.4 on unchanged code), and a
 * server process has a speed of its own that no number of rounds averages out. So the
 * gate runs several blocks, each with fresh base and head processes, and estimates
 * quantile(all head latencies) / quantile(all base latencies). The interval is a
 * hierarchical percentile bootstrap: resample blocks, then the pairs within each
 * chosen block, then recompute the pooled ratio. Seeded.
 */
export function pooledBootstrapRatio(
  pairs: readonly SamplePair[],
  q: number,
  options: BootstrapOptions = {},
): RatioEstimate {
  if (pairs.length === 0) throw new Error('no rounds to compare');
  const iterations = options.iterations ?? 2000;
  const confidence = options.confidence ?? 0.95;
  const rng = xoroshiro128plus(options.seed ?? 1);
  const blocks = [...new Set(pairs.map((p) => p.block))].map((b) =>
    pairs.filter((p) => p.block === b),
  );
  // the largest resample: every draw picks the largest block and, in it, the longest round
  const longest = Math.max(...pairs.map((p) => Math.max(p.base.length, p.head.length)));
  const mostPairs = Math.max(...blocks.map((b) => b.length));
  const capacity = longest * mostPairs * blocks.length;
  const scratch = new Float64Array(capacity);
  const pooled = (parts: readonly Float64Array[]) => {
    let n = 0;
    for (const part of parts) {
      scratch.set(part, n);
      n += part.length;
    }
    return select(scratch, n, q);
  };
  const ratioOf = (chosen: readonly SamplePair[]) =>
    pooled(chosen.map((p) => p.head)) / pooled(chosen.map((p) => p.base));
  const estimates = new Float64Array(iterations);
  for (let i = 0; i < iterations; i++) {
    const chosen: SamplePair[] = [];
    for (let b = 0; b < blocks.length; b++) {
      const block = blocks[uniformInt(rng, 0, blocks.length - 1)]!;
      for (let j = 0; j < block.length; j++)
        chosen.push(block[uniformInt(rng, 0, block.length - 1)]!);
    }
    estimates[i] = ratioOf(chosen);
  }
  estimates.sort();
  const tail = (1 - confidence) / 2;
  const sorted = [...estimates];
  return {
    ratio: ratioOf(pairs),
    low: quantile(sorted, tail),
    high: quantile(sorted, 1 - tail),
    confidence,
  };
}

/** The q-quantile (nearest rank) of values[0..n), reordering them: quickselect, O(n). */
export function select(values: Float64Array, n: number, q: number): number {
  if (n === 0) return Number.NaN;
  const k = Math.min(n - 1, Math.max(0, Math.ceil(q * n) - 1));
  let lo = 0;
  let hi = n - 1;
  while (lo < hi) {
    const pivot = values[(lo + hi) >> 1]!;
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (values[i]! < pivot) i++;
      while (values[j]! > pivot) j--;
      if (i <= j) {
        const t = values[i]!;
        values[i] = values[j]!;
        values[j] = t;
        i++;
        j--;
      }
    }
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else break;
  }
  return values[k]!;
}
