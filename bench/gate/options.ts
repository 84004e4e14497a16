import {
  BUDGETS,
  CAPACITY_METRICS,
  DEFAULT_GATE_METRICS,
  GATE_METRICS,
  type GateMetric,
  validateBudgets,
} from '../budgets.ts';
import { type GateOptions, GateUsageError } from './types.ts';
import { git, resolveCommit } from './worktree.ts';

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
  const capacity = metrics.filter((m) => (CAPACITY_METRICS as readonly string[]).includes(m));
  if (capacity.length > 0 && (!env.BASE || timingRaw === '0')) {
    throw new GateUsageError(
      'usage',
      `METRICS=${capacity.join(',')}: the capacity check compares head with base under load; set BASE=<ref> (and not TIMING=0)`,
    );
  }
  return {
    ...(env.BASE ? { base: env.BASE } : {}),
    blocks: num('BLOCKS', 2, 1, 20),
    rounds: num('ROUNDS', 6, 2, 100),
    roundSec: num('ROUND_SEC', 0.75, 0.25, 60),
    warmupSec: num('WARMUP_SEC', 3, 0, 60),
    metrics: metrics.length > 0 ? (metrics as GateMetric[]) : [...DEFAULT_GATE_METRICS],
    budgets,
    timing: timingRaw !== '0',
    allowDirtyBudgets: env.ALLOW_DIRTY_BUDGETS === '1',
  };
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
