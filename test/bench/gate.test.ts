import { execFileSync } from 'node:child_process';
import {
  appendFileSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BUDGETS, type Budget, sloLines, validateBudgets } from '../../bench/budgets.ts';
import { calibrationOptions } from '../../bench/gate/calibrate.ts';
import { evaluate } from '../../bench/gate/evaluate.ts';
import { gateOptionsFromEnv } from '../../bench/gate/options.ts';
import { renderGateJUnit, renderGateMarkdown } from '../../bench/gate/report.ts';
import type { GateReport, Measured, RoundValues } from '../../bench/gate/types.ts';
import {
  decide,
  median,
  pairedBootstrapRatio,
  pooledBootstrapRatio,
  select,
} from '../../bench/stats.ts';
import { type CliRun, runProcess, runTsxCli } from '../support/cli.ts';

const budget = BUDGETS.find((b) => b.scenario === 'members' && b.preset === 'recommended')!;

/** Rounds with a p95 around `p95` times a noise factor drawn from a fixed list. */
function rounds(p95: number, noise: readonly number[]): RoundValues[] {
  return noise.map((f) => ({
    p50: p95 * 0.6 * f,
    p95: p95 * f,
    p99: p95 * 2 * f,
    rps: 1000 / (p95 * 0.6 * f),
    error_rate: 0,
    vs_bare: 0.8 / (p95 * f),
    cpu_us: 40 * p95 * f,
    requests: 800,
  }));
}
const NOISE = [1.0, 1.08, 0.95, 1.12, 0.9, 1.03, 0.97, 1.1, 0.93, 1.05, 0.99, 1.01];
const SHIFTED = [...NOISE.slice(3), ...NOISE.slice(0, 3)];

/** A round's latencies: evenly spread from 0.5x to 1.5x of `scale` (its p95 is about 1.45x). */
const spread = (scale: number, n = 600) =>
  Float64Array.from({ length: n }, (_, k) => scale * (0.5 + k / n));

function measured(baseP95: number, headP95: number, det: Partial<Record<string, number>> = {}) {
  // the figures this tree measures: exactly the budget's ceilings
  const deterministic = {
    queries_cold: budget.deterministic.queriesCold,
    queries_warm: budget.deterministic.queriesWarm,
    page_round_trips: budget.deterministic.pageRoundTrips!,
    response_bytes: budget.deterministic.responseBytes,
  };
  return {
    deterministic: { base: deterministic, head: { ...deterministic, ...det } },
    rounds: { base: rounds(baseP95, NOISE), head: rounds(headP95, SHIFTED) },
    // two blocks of fresh processes, six pairs each
    pairs: NOISE.map((f, i) => ({
      block: i % 2,
      base: spread(baseP95 * f),
      head: spread(headP95 * SHIFTED[i]!),
    })),
    capacity: [],
  } satisfies Measured;
}
const all = {
  metrics: gateOptionsFromEnv({}).metrics,
  timing: true,
  rounds: 12,
};

describe('gate statistics', () => {
  it('median and the paired bootstrap are exact on known data', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    const same = pairedBootstrapRatio([1, 2, 3, 4], [1, 2, 3, 4]);
    expect(same).toMatchObject({ ratio: 1, low: 1, high: 1 });
    const slower = pairedBootstrapRatio([1, 2, 3, 4], [1.2, 2.4, 3.6, 4.8]);
    expect(slower.ratio).toBeCloseTo(1.2, 10);
    expect(slower.low).toBeCloseTo(1.2, 10);
    // seeded: the same input gives the same interval
    expect(pairedBootstrapRatio([1, 3, 2, 5], [2, 3, 1, 4])).toEqual(
      pairedBootstrapRatio([1, 3, 2, 5], [2, 3, 1, 4]),
    );
    expect(() => pairedBootstrapRatio([1, 2], [1])).toThrow(/paired rounds/);
  });

  it('the paired bootstrap by blocks: one block is the pairs alone; two levels both stay in', () => {
    const base = new Array(12).fill(100);
    const head = [104, 105, 106, 105, 104.5, 105.5, 119, 120, 121, 120, 119.5, 120.5];
    const one = new Array(12).fill(0);
    expect(pairedBootstrapRatio(base, head, { blocks: one })).toEqual(
      pairedBootstrapRatio(base, head),
    );
    // a pair of fast processes (block 0) and a pair of slow ones (block 1)
    const blocks = [0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1];
    const estimate = pairedBootstrapRatio(base, head, { blocks });
    expect(estimate.ratio).toBeCloseTo(1.125, 10);
    expect(estimate.low).toBeLessThanOrEqual(1.05);
    expect(estimate.high).toBeGreaterThanOrEqual(1.2);
  });

  it('quickselect agrees with sorting; the pooled ratio is exact on scaled data', () => {
    const values = Float64Array.from({ length: 1001 }, (_, i) => (i * 7919) % 1001);
    for (const q of [0, 0.5, 0.95, 0.99, 1]) {
      const sorted = [...values].sort((a, b) => a - b);
      expect(select(Float64Array.from(values), values.length, q)).toBe(
        sorted[Math.max(0, Math.ceil(q * values.length) - 1)],
      );
    }
    const pairs = [0, 0, 1, 1].map((block, i) => ({
      block,
      base: Float64Array.from({ length: 100 }, (_, k) => (k + 1) * (i + 1)),
      head: Float64Array.from({ length: 100 }, (_, k) => (k + 1) * (i + 1) * 1.2),
    }));
    // rounds of uneven length (as real rounds are) and blocks of uneven size
    const uneven = [0, 0, 0, 1].map((block, i) => ({
      block,
      base: Float64Array.from({ length: 50 + 300 * (i === 2 ? 1 : 0) }, (_, k) => k + 1),
      head: Float64Array.from({ length: 50 + 300 * (i === 2 ? 1 : 0) }, (_, k) => 2 * (k + 1)),
    }));
    expect(pooledBootstrapRatio(uneven, 0.5).ratio).toBeCloseTo(2, 5);
    const estimate = pooledBootstrapRatio(pairs, 0.95);
    expect(estimate.ratio).toBeCloseTo(1.2, 10);
    expect(estimate.low).toBeCloseTo(1.2, 10);
    expect(estimate.high).toBeCloseTo(1.2, 10);
  });

  it('decides with both the effect size and the interval', () => {
    expect(
      decide({ ratio: 1.1, low: 1.02, high: 1.2, confidence: 0.95 }, 'lower-is-better', 0.05),
    ).toBe('regression');
    // big but unsure: the interval includes 1
    expect(
      decide({ ratio: 1.1, low: 0.98, high: 1.2, confidence: 0.95 }, 'lower-is-better', 0.05),
    ).toBe('pass');
    // sure but small: under the minimum effect size
    expect(
      decide({ ratio: 1.03, low: 1.01, high: 1.05, confidence: 0.95 }, 'lower-is-better', 0.05),
    ).toBe('pass');
    expect(
      decide({ ratio: 0.85, low: 0.8, high: 0.9, confidence: 0.95 }, 'higher-is-better', 0.05),
    ).toBe('regression');
    expect(
      decide({ ratio: 0.85, low: 0.8, high: 0.9, confidence: 0.95 }, 'lower-is-better', 0.05),
    ).toBe('improvement');
  });
});

describe('gate verdicts', () => {
  it('passes unchanged code and flags a 20% p95 regression, relative to the base', () => {
    const same = evaluate(budget, measured(2, 2), all, ['ref-2core'], true);
    expect(same.filter((r) => r.verdict === 'regression')).toEqual([]);
    const slower = evaluate(budget, measured(2, 2.4), all, ['ref-2core'], true);
    const p95 = slower.find((r) => r.metric === 'p95')!;
    expect(p95.verdict).toBe('regression');
    expect(p95.ratio).toBeGreaterThan(1.1);
    expect(p95.interval![0]).toBeGreaterThan(1);
    expect(slower.find((r) => r.metric === 'rps')!.verdict).toBe('regression');
    // the app's overhead against the bare runtime measured in the same rounds
    expect(slower.find((r) => r.metric === 'vs_bare')).toMatchObject({
      verdict: 'regression',
      budget: '−5% vs base',
    });
    // the server's CPU per answer, paired round by round
    const cpu = slower.find((r) => r.metric === 'cpu_us')!;
    expect(cpu).toMatchObject({ verdict: 'regression', budget: '+5% vs base' });
    expect(cpu.ratio).toBeCloseTo(1.2, 1);
    expect(same.find((r) => r.metric === 'cpu_us')!.verdict).toBe('pass');
  });

  it('reports the CPU per request without a base, gating nothing on it', () => {
    const rows = evaluate(budget, measured(2, 8), all, ['ref-2core'], false);
    expect(rows.find((r) => r.metric === 'cpu_us')).toMatchObject({
      head: expect.closeTo(320, -1),
      verdict: 'skipped',
      note: 'compared with a base: make gate BASE=<ref>',
    });
  });

  it('gates the overhead ratio against its floor, only for entries that have one', () => {
    const floor = budget.absolute.minVsBare!;
    // p95 2 gives a ratio of 0.4 in the synthetic rounds; p95 8 gives 0.1
    const fine = evaluate(budget, measured(2, 2), all, ['ref-2core'], false);
    expect(fine.find((r) => r.metric === 'vs_bare')).toMatchObject({
      verdict: 'pass',
      budget: `≥ ${floor} (ref-2core)`,
    });
    const heavy = evaluate(budget, measured(8, 8), all, ['ref-2core'], false);
    expect(heavy.find((r) => r.metric === 'vs_bare')!.verdict).toBe('regression');
    const noFloor = BUDGETS.find((b) => b.scenario === 'members' && b.preset === 'baseline')!;
    const rows = evaluate({ ...noFloor, timed: true }, measured(2, 2), all, ['ref-2core'], false);
    expect(rows.find((r) => r.metric === 'vs_bare')).toBeUndefined();
  });

  it('gates deterministic figures exactly: one more query per request fails whatever the noise', () => {
    const cold0 = budget.deterministic.queriesCold;
    const rows = evaluate(
      budget,
      measured(2, 2, { queries_cold: cold0 + 1 }),
      all,
      ['ref-2core'],
      true,
    );
    const cold = rows.find((r) => r.metric === 'queries_cold')!;
    expect(cold).toMatchObject({ base: cold0, head: cold0 + 1, verdict: 'regression' });
    expect(cold.note).toContain('1 more than the base');
    // in absolute mode the ceiling is the limit
    const abs = evaluate(
      budget,
      measured(2, 2, { response_bytes: 14830 }),
      all,
      ['ref-2core'],
      false,
    );
    expect(abs.find((r) => r.metric === 'response_bytes')!.verdict).toBe('regression');
    expect(abs.find((r) => r.metric === 'queries_cold')!.verdict).toBe('pass');
  });

  it('reports absolute timing on another machine class without gating it', () => {
    const slow = measured(2, budget.absolute.latencyMs.p95 * 3);
    const elsewhere = evaluate(budget, slow, all, [], false);
    const p95 = elsewhere.find((r) => r.metric === 'p95')!;
    expect(p95.verdict).toBe('skipped');
    expect(p95.note).toContain('ref-2core');
    const here = evaluate(budget, slow, all, ['ref-2core'], false);
    expect(here.find((r) => r.metric === 'p95')!.verdict).toBe('regression');
  });

  it('does not decide a percentile without enough samples per round', () => {
    const m = measured(2, 3);
    // 12 pairs of 50: 600 pooled requests per side, enough for p50 (100), not p95 (1,000)
    m.pairs = m.pairs.map((p) => ({ ...p, base: p.base.slice(0, 50), head: p.head.slice(0, 50) }));
    const rows = evaluate(budget, m, all, ['ref-2core'], true);
    expect(rows.find((r) => r.metric === 'p95')!.verdict).toBe('insufficient samples');
    expect(rows.find((r) => r.metric === 'p50')!.verdict).toBe('regression');
  });

  it('renders Markdown and JUnit XML that name the regression', () => {
    const more = { queries_cold: budget.deterministic.queriesCold + 1 };
    const rows = evaluate(budget, measured(2, 2.4, more), all, ['ref-2core'], true);
    const report = {
      schema: 'dataflow.gate/v1',
      mode: 'relative',
      startedAt: '2026-01-01T00:00:00.000Z',
      elapsedSec: 1,
      base: { ref: 'main', sha: 'a'.repeat(40) },
      head: { sha: 'b'.repeat(40), dirty: false },
      machine: { cpus: 2, platform: 'linux-x64', matches: ['ref-2core'] },
      settings: { ...gateOptionsFromEnv({}), entries: ['members/recommended'] },
      method: 'm',
      rows,
      rounds: {},
      passed: false,
    } as unknown as GateReport;
    const md = renderGateMarkdown(report);
    expect(md).toContain('❌ gate REGRESSION');
    expect(md).toContain('members/recommended DB queries/request, cold');
    const junit = renderGateJUnit(report);
    const failures = rows.filter((r) => r.verdict === 'regression').length;
    expect(junit).toContain(`failures="${failures}"`);
    expect(junit.match(/<failure /g)).toHaveLength(failures);
    expect(junit).toContain('<testcase classname="gate.members/recommended" name="latency p95">');
  });
});

describe('gate inputs', () => {
  it('names an unknown metric, scenario, preset or a nonsense number', () => {
    expect(() => gateOptionsFromEnv({ METRICS: 'p95,p42' })).toThrow(
      /METRICS: unknown metric "p42"/,
    );
    expect(() => gateOptionsFromEnv({ SCENARIO: 'nope' })).toThrow(/SCENARIO="nope" has no budget/);
    expect(() => gateOptionsFromEnv({ PRESET: 'coalesce' })).toThrow(
      /PRESET="coalesce" has no budget/,
    );
    expect(() => gateOptionsFromEnv({ ROUNDS: '1' })).toThrow(/ROUNDS="1" must be a number from 2/);
    expect(() => gateOptionsFromEnv({ TIMING: 'yes' })).toThrow(/TIMING="yes"/);
    expect(gateOptionsFromEnv({ SCENARIO: 'members', PRESET: 'batch' }).budgets).toHaveLength(1);
  });

  it('make gate-calibrate asks for every timing and deterministic metric, and can', () => {
    // it asked for every metric once, capacity included, which needs a BASE: a usage error
    const metrics = calibrationOptions({}).metrics;
    expect(metrics).toEqual(expect.arrayContaining(['p95', 'rps', 'cpu_us', 'queries_cold']));
    expect(metrics).not.toContain('x_max');
    expect(() => calibrationOptions({ ROUNDS: '0' })).toThrow(/ROUNDS="0"/);
  });

  it('validates a budgets file and names the entry and field', () => {
    expect(validateBudgets(BUDGETS)).toHaveLength(BUDGETS.length);
    const broken: Budget[] = structuredClone(BUDGETS);
    (broken[1]!.absolute.latencyMs as { p95: number }).p95 = -3;
    expect(() => validateBudgets(broken)).toThrow(
      /budget #1 \(members \/ batch\) absolute\.latencyMs\.p95/,
    );
    expect(() => validateBudgets([...BUDGETS, BUDGETS[0]])).toThrow(/defined twice/);
  });

  it('SLO lines for the dashboards come from the same budgets', () => {
    const lines = sloLines();
    expect(lines).toContainEqual(
      expect.objectContaining({
        scenario: 'members',
        quantile: 0.95,
        seconds: budget.absolute.latencyMs.p95 / 1000,
        promql:
          'histogram_quantile(0.95, sum by (le) (rate(http_server_request_duration_bucket{http_route="/api/orgs/:orgId/members"}[5m])))',
      }),
    );
    // only the production preset's budgets draw lines
    expect(lines).toHaveLength(3 * BUDGETS.filter((b) => b.preset === 'recommended').length);
  });
});

const gateCli = (env: Record<string, string>, cwd = process.cwd()) =>
  runTsxCli('bench/gate/cli.ts', [], { env, cwd });

describe('make gate (CLI)', () => {
  it('exits 2 with the reason on an unknown ref or metric, running nothing', async () => {
    const ref = await gateCli({ BASE: 'no-such-branch-xyz', ALLOW_DIRTY_BUDGETS: '1' });
    expect(ref.code).toBe(2);
    expect(ref.stderr).toContain('usage error: BASE="no-such-branch-xyz" is not a commit');
    const metric = await gateCli({ METRICS: 'p95,latency' });
    expect(metric.code).toBe(2);
    expect(metric.stderr).toContain('unknown metric "latency"');
  }, 60_000);

  it('refuses a budgets file with uncommitted changes (exit 2), in a clone of this repository', async () => {
    const clone = mkdtempSync(join(tmpdir(), 'gate-clone-'));
    try {
      execFileSync('git', ['clone', '-q', '--depth', '1', `file://${process.cwd()}`, clone]);
      symlinkSync(join(process.cwd(), 'node_modules'), join(clone, 'node_modules'), 'dir');
      appendFileSync(join(clone, 'bench/budgets.ts'), '\n// tweak\n');
      const run = await gateCli({ TIMING: '0', ALLOW_DIRTY_BUDGETS: '' }, clone);
      expect(run.code).toBe(2);
      expect(run.stderr).toContain('usage error: bench/budgets.ts has uncommitted changes');
    } finally {
      rmSync(clone, { recursive: true, force: true });
    }
  }, 60_000);

  it('the deterministic gate passes on this tree and writes the three outputs', async () => {
    const results = mkdtempSync(join(tmpdir(), 'gate-results-'));
    try {
      const run = await gateCli({ TIMING: '0', RESULTS_DIR: results, ALLOW_DIRTY_BUDGETS: '1' });
      expect(run.stderr).not.toContain('error');
      expect(run.code).toBe(0);
      expect(run.stdout).toContain('gate PASS');
      const report = JSON.parse(
        readFileSync(join(results, 'gate/latest/gate.json'), 'utf8'),
      ) as GateReport;
      expect(
        report.rows.find((r) => r.entry === 'members/baseline' && r.metric === 'queries_cold'),
      ).toMatchObject({ head: 52, verdict: 'pass' });
      // the dashboard page probed first cached the membership: the page joined with its users
      expect(
        report.rows.find((r) => r.entry === 'members/recommended' && r.metric === 'queries_cold'),
      ).toMatchObject({ head: 1 });
      expect(readFileSync(join(results, 'gate/latest/junit.xml'), 'utf8')).toContain(
        'failures="0"',
      );
      expect(readFileSync(join(results, 'gate/latest/gate.md'), 'utf8')).toContain(
        'No regression.',
      );
    } finally {
      rmSync(results, { recursive: true, force: true });
    }
  }, 120_000);
});

/** `make <args>` in `cwd`, as a user or a CI script runs it (no parent make's flags). */
function runMake(args: readonly string[], cwd: string): Promise<CliRun> {
  const env = { ...process.env };
  for (const name of ['MAKEFLAGS', 'MFLAGS', 'MAKELEVEL', 'MAKEOVERRIDES']) delete env[name];
  return runProcess('make', ['--no-print-directory', ...args], { env, cwd });
}

describe('make gate: the documented exit codes hold through make', () => {
  it('0 on pass, 1 on a regression, 2 on a usage error', async () => {
    const clone = mkdtempSync(join(tmpdir(), 'gate-make-'));
    try {
      execFileSync('git', ['clone', '-q', '--depth', '1', `file://${process.cwd()}`, clone]);
      symlinkSync(join(process.cwd(), 'node_modules'), join(clone, 'node_modules'), 'dir');
      // older than the installed tree's stamp, so `make deps` does not reinstall (through
      // the symlink, into this checkout's node_modules)
      for (const file of ['package.json', 'package-lock.json']) utimesSync(join(clone, file), 0, 0);
      const only = ['TIMING=0', 'SCENARIO=members', 'PRESET=batch'];

      const pass = await runMake(['gate', ...only], clone);
      expect(pass.stderr).toContain('gate PASS');
      expect(pass.code).toBe(0);

      const usage = await runMake(['gate', 'METRICS=latency'], clone);
      expect(usage.stderr).toContain('unknown metric "latency"');
      expect(usage.code).toBe(2);

      // a committed budget the tree no longer meets: the batched page allowed 1 query
      const budgets = join(clone, 'bench/budgets.ts');
      const text = readFileSync(budgets, 'utf8');
      const tightened = text.replace(
        'deterministic: { queriesCold: 2, queriesWarm: 2, responseBytes: 14829 }',
        'deterministic: { queriesCold: 1, queriesWarm: 2, responseBytes: 14829 }',
      );
      expect(tightened).not.toBe(text);
      writeFileSync(budgets, tightened);
      const git = ['-C', clone, '-c', 'user.name=test', '-c', 'user.email=test@example.com'];
      execFileSync('git', [...git, 'commit', '-qam', 'tighten a budget']);
      const regression = await runMake(['gate', ...only], clone);
      expect(regression.stderr).toContain('REGRESSION');
      expect(regression.code).toBe(1);
    } finally {
      rmSync(clone, { recursive: true, force: true });
    }
  }, 240_000);
});
