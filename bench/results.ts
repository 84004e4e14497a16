import { mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BenchOptions, ProfileSettings } from './config.ts';
import { benchOpenMetrics } from './openmetrics.ts';
import {
  comparisonLines,
  type ProfileComparison,
  type ProfileSummary,
  profileLines,
  profileMarkdown,
} from './profiles.ts';

/**
 * The results of one run: `results/<run-id>/results.json` (schema below, versioned),
 * `report.md`, and `results/latest` -> the newest run. Every figure carries its unit and
 * sample count and comes from this run.
 */
export const RESULTS_SCHEMA = 'dataflow.bench-results/v1';

export interface Figure {
  suite: string;
  scenario: string;
  /** Lever preset the figure was measured under (null: lever-independent). */
  preset: string | null;
  metric: string;
  /** null: not measurable in this run (see note). */
  value: number | null;
  unit: string;
  samples: number;
  note?: string;
  /** The 95% interval of `value`, in its unit, when the figure is an estimate from paired rounds. */
  interval?: Interval;
  /** Latency histogram (autocannon percentiles, ms), when the figure is a latency. */
  histogram?: Record<string, number>;
}

/**
 * A 95% interval, from a bootstrap over the paired rounds an estimate comes from
 * (`bench/stats.ts`): how far the value moved between the rounds of this run.
 */
export interface Interval {
  low: number;
  high: number;
}

export type Verdict = 'pass' | 'fail' | 'info' | 'not run';

export interface Finding {
  finding: string;
  metric: string;
  unit: string;
  baseline: number | null;
  /** Value per preset measured. */
  presets: Record<string, number | null>;
  /** The preset the target applies to, its value and its ratio to baseline. */
  judged: { preset: string | null; value: number | null; ratio: number | null } | null;
  /** The judged value's 95% interval, when its figure has one. */
  interval?: Interval;
  target: string;
  verdict: Verdict;
  /** Where it was measured: database (with its round trip) and profile. */
  measuredOn: string;
  note?: string;
}

export interface BenchResults {
  schema: typeof RESULTS_SCHEMA;
  runId: string;
  complete: boolean;
  incompleteReason?: string;
  startedAt: string;
  finishedAt: string;
  machine: { cpus: number; cpuModel: string; memoryGiB: number; node: string; platform: string };
  git: { sha: string; dirty: boolean };
  config: BenchOptions & { settings: ProfileSettings };
  figures: Figure[];
  findings: Finding[];
  warnings: string[];
  /** Suites that failed (the run exits 1); their findings say `not run`. */
  failures: string[];
  /** With `CPU_PROFILE=1`: where each profiled process's CPU went (`bench/profiles.ts`). */
  profiles?: ProfileSummary[];
  /** With `CPU_PROFILE=1`: the suites' process pairs, origin by origin. */
  profileComparisons?: ProfileComparison[];
}

export function writeResults(results: BenchResults): string {
  const dir = join(results.config.resultsDir, results.runId);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'results.json'), `${JSON.stringify(results, null, 2)}\n`);
  writeFileSync(join(dir, 'report.md'), renderMarkdown(results));
  writeFileSync(join(dir, 'bench.om'), benchOpenMetrics(results));
  const latest = join(results.config.resultsDir, 'latest');
  rmSync(latest, { force: true });
  symlinkSync(results.runId, latest);
  return dir;
}

const fmt = (value: number | null | undefined, unit = '') =>
  value === null || value === undefined
    ? '-'
    : `${Math.abs(value) >= 100 ? Math.round(value) : Math.round(value * 100) / 100}${unit}`;

/** `low–high`, in the figure's unit, or '' without an interval. */
export const fmtInterval = (interval: Interval | undefined, unit = ''): string =>
  interval === undefined ? '' : `${fmt(interval.low)}–${fmt(interval.high)}${unit}`;

export function findingsTable(results: BenchResults): string[][] {
  const presets = results.config.presets.filter((p) => p !== 'baseline');
  const header = [
    'finding',
    'measured on',
    'metric',
    'baseline',
    ...presets,
    'ratio',
    'target',
    'verdict',
  ];
  // a finding without per-preset values (a ratio to an anchor of the run) shows its one
  // value, and its interval when it has one
  const single = (f: Finding, value: number) => {
    const unit = f.unit === 'x' ? 'x' : ` ${f.unit}`;
    const interval = fmtInterval(f.interval, f.unit === '%' ? '%' : '');
    return `${fmt(value, unit)}${interval ? ` (${interval})` : ''}`;
  };
  const ratio = (f: Finding) =>
    f.judged === null || f.judged.value === null
      ? '-'
      : f.judged.ratio !== null
        ? `${fmt(f.judged.ratio)}x ${f.judged.preset}`
        : Object.keys(f.presets).length === 0
          ? single(f, f.judged.value)
          : '-';
  const rows = results.findings.map((f) => [
    f.finding,
    f.measuredOn,
    `${f.metric} (${f.unit})`,
    fmt(f.baseline),
    ...presets.map((p) => fmt(f.presets[p])),
    ratio(f),
    f.target,
    f.verdict,
  ]);
  return [header, ...rows];
}

/**
 * The anchors of this run, in one line each: the HTTP figures' bare runtime and the DB
 * figures' raw driver, measured in the same run as every other figure.
 */
export function anchorLines(results: BenchResults): string[] {
  const find = (suite: string, metric: string) =>
    results.figures.find((f) => f.suite === suite && f.metric === metric)?.value ?? null;
  const lines: string[] = [];
  const bare = find('overhead', 'req/s: bare node:http hello');
  if (bare !== null) {
    const hono = find('overhead', 'req/s: bare Hono hello');
    const als = find('overhead', 'req/s: bare node:http hello in an AsyncLocalStorage');
    const health = find('overhead', 'req/s: app GET /health');
    const ratio = find('overhead', 'app GET /health ÷ bare node:http (req/s)');
    lines.push(
      `anchor, HTTP: bare node:http ${fmt(bare)} req/s, bare Hono ${fmt(hono)}, bare node:http in an AsyncLocalStorage ${fmt(als)}, app GET /health ${fmt(health)} (${fmt(ratio)}x the bare runtime)`,
    );
    const bytes = find('overhead', 'req/s: bare node:http, the members page bytes');
    const hit = find('overhead', 'req/s: members page, cache hit');
    const hitRatio = find(
      'overhead',
      'members page, cache hit ÷ bare node:http sending the same bytes (req/s)',
    );
    if (bytes !== null) {
      lines.push(
        `anchor, payload: bare node:http sending the members page bytes ${fmt(bytes)} req/s, the app's cache hit ${fmt(hit)} (${fmt(hitRatio)}x)`,
      );
    }
  }
  const raw = find('overhead', 'raw driver (libsql prepared statement)');
  if (raw !== null) {
    const app = find('overhead', 'app DB layer (getMembership)');
    lines.push(
      `anchor, DB: one indexed row, raw driver ${fmt(raw)} us, through the app's DB layer ${fmt(app)} us`,
    );
  }
  return lines;
}

export function renderTerminal(results: BenchResults): string {
  const table = findingsTable(results);
  const widths = table[0]!.map((_, i) => Math.max(...table.map((r) => r[i]!.length)));
  const lines = table.map((r) =>
    r
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd(),
  );
  lines.splice(1, 0, widths.map((w) => '-'.repeat(w)).join('  '));
  const head = `${results.complete ? '' : 'INCOMPLETE: '}bench ${results.runId} (${results.config.profile}, DB=${results.config.db}${results.config.rttMs ? ` RTT=${results.config.rttMs}ms` : ''})`;
  return [
    head,
    '',
    ...lines,
    '',
    ...anchorLines(results),
    ...results.findings.filter((f) => f.note).map((f) => `${f.finding}: ${f.note}`),
    ...profileLines(results.profiles ?? []),
    ...comparisonLines(results.profileComparisons ?? []),
    ...results.warnings.map((w) => `warning: ${w}`),
    ...results.failures.map((f) => `FAILED: ${f}`),
  ].join('\n');
}

export function renderMarkdown(results: BenchResults): string {
  const table = findingsTable(results);
  const md = (r: string[]) => `| ${r.map((c) => c.replace(/\|/g, '\\|')).join(' | ')} |`;
  const lines = [
    `# Findings — run ${results.runId}${results.complete ? '' : ' (INCOMPLETE)'}`,
    '',
    `Profile \`${results.config.profile}\`, DB \`${results.config.db}\`${results.config.rttMs ? `, RTT ${results.config.rttMs} ms` : ''}, git ${results.git.sha.slice(0, 12)}${results.git.dirty ? ' (dirty)' : ''}, ${results.machine.cpus} CPUs (${results.machine.cpuModel}), Node ${results.machine.node}.`,
    '',
    md(table[0]!),
    md(table[0]!.map(() => '---')),
    ...table.slice(1).map(md),
    '',
    ...anchorLines(results).map((line) => `- ${line}`),
    ...results.findings.filter((f) => f.note).map((f) => `- **${f.finding}**: ${f.note}`),
    ...results.warnings.map((w) => `- warning: ${w}`),
    '',
    ...profileMarkdown(results.profiles ?? [], 'profiles', results.profileComparisons),
    '## Every figure',
    '',
    md([
      'suite',
      'scenario',
      'preset',
      'metric',
      'value',
      '95% interval',
      'unit',
      'samples',
      'note',
    ]),
    md(['---', '---', '---', '---', '---:', '---:', '---', '---:', '---']),
    ...results.figures.map((f) =>
      md([
        f.suite,
        f.scenario,
        f.preset ?? '-',
        f.metric,
        fmt(f.value),
        fmtInterval(f.interval),
        f.unit,
        String(f.samples),
        f.note ?? '',
      ]),
    ),
    '',
  ];
  return lines.join('\n');
}
