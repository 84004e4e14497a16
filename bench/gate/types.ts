import type { Budget, DeterministicMetric, GateMetric, TimingMetric } from '../budgets.ts';
import type { SamplePair, Verdict } from '../stats.ts';
import type { CapacityStep } from './capacity.ts';

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
  'throughput: median of paired round ratios, bootstrap CI over pairs; server CPU per request (cpu_us): the same, bootstrap over blocks then pairs; capacity (x_max, n_star): USL fits of ' +
  'interleaved step loads, head/base with a stratified paired bootstrap CI. Regression when the estimate is worse ' +
  'than the budget maxRegression AND the whole CI is on the worse side of 1. Deterministic figures: ' +
  'exact (head > base or head > ceiling fails).';

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
  /** The step load of the capacity check, both sides per level and round. */
  capacity: CapacityStep[];
}

export interface GateHooks {
  progress?: (line: string) => void;
  signal?: AbortSignal;
}
