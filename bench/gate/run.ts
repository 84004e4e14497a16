import { BUILD_CHECKS } from './bundle.ts';
import { evaluate, machineInfo } from './evaluate.ts';
import { measureEntry } from './measure.ts';
import { checkGateInputs } from './options.ts';
import { seededDatabase } from './seeded-db.ts';
import {
  GATE_SCHEMA,
  type GateHooks,
  type GateOptions,
  type GateReport,
  type GateRow,
  METHOD,
  type Side,
} from './types.ts';
import { git, prepareWorktree, removeWorktree, resolveCommit } from './worktree.ts';

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
    // the build's figures, once per run: head, and the base beside it
    for (const check of BUILD_CHECKS) {
      if (!options.metrics.includes(check.metric)) continue;
      progress(check.progress);
      rows.push(
        check.row(check.measure(process.cwd()), base ? check.measure(base.dir) : undefined),
      );
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
