import { mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { GateReport, GateRow } from './types.ts';

/**
 * The gate's outputs: a terminal table, Markdown for a PR comment, JUnit XML for CI
 * systems, and the JSON report, under `results/gate/<id>/` (`results/gate/latest`).
 */
const COLUMNS = ['entry', 'metric', 'base', 'head', 'ratio', 'interval', 'budget', 'verdict'];

function cells(row: GateRow): string[] {
  const n = (x: number | null) => (x === null ? '–' : String(x));
  return [
    row.entry,
    `${row.label} (${row.unit})`,
    n(row.base),
    n(row.head),
    row.ratio === null ? '–' : row.ratio.toFixed(3),
    row.interval ? `[${row.interval[0].toFixed(3)}, ${row.interval[1].toFixed(3)}]` : '–',
    row.budget,
    row.verdict + (row.note ? ` (${row.note})` : ''),
  ];
}

function headline(report: GateReport): string {
  const verdict = report.passed ? 'PASS' : 'REGRESSION';
  const against = report.base
    ? `head ${report.head.sha.slice(0, 10)}${report.head.dirty ? '+dirty' : ''} vs base ${report.base.ref} (${report.base.sha.slice(0, 10)})`
    : `head ${report.head.sha.slice(0, 10)}${report.head.dirty ? '+dirty' : ''} vs absolute budgets`;
  return `gate ${verdict}: ${against}, ${report.settings.blocks} blocks × ${report.settings.rounds} rounds × ${report.settings.roundSec}s, ${report.elapsedSec}s`;
}

export function renderGateTerminal(report: GateReport): string {
  const table = [COLUMNS, ...report.rows.map(cells)];
  const widths = COLUMNS.map((_, i) => Math.max(...table.map((r) => r[i]!.length)));
  const lines = table.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  '));
  lines.splice(1, 0, widths.map((w) => '-'.repeat(w)).join('  '));
  return [headline(report), '', ...lines].join('\n');
}

export function renderGateMarkdown(report: GateReport): string {
  const esc = (s: string) => s.replace(/\|/g, '\\|');
  const regressions = report.rows.filter((r) => r.verdict === 'regression');
  return [
    `### ${report.passed ? '✅' : '❌'} ${headline(report)}`,
    '',
    regressions.length > 0
      ? `**${regressions.length} regression${regressions.length > 1 ? 's' : ''}:** ${regressions.map((r) => `${r.entry} ${r.label}`).join(', ')}`
      : 'No regression.',
    '',
    `| ${COLUMNS.join(' | ')} |`,
    `|${COLUMNS.map((c) => (['base', 'head', 'ratio'].includes(c) ? '---:' : '---')).join('|')}|`,
    ...report.rows.map((r) => `| ${cells(r).map(esc).join(' | ')} |`),
    '',
    `<sub>Method: ${report.method} Machine: ${report.machine.cpus} CPUs, ${report.machine.platform}${report.machine.matches.length ? ` (class ${report.machine.matches.join(', ')})` : ' (no budgeted machine class: absolute timing reported, not gated)'}.</sub>`,
    '',
  ].join('\n');
}

const xml = (s: string) =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

export function renderGateJUnit(report: GateReport): string {
  const entries = [...new Set(report.rows.map((r) => r.entry))];
  const suites = entries.map((entry) => {
    const rows = report.rows.filter((r) => r.entry === entry);
    const failures = rows.filter((r) => r.verdict === 'regression').length;
    const skipped = rows.filter(
      (r) => r.verdict === 'skipped' || r.verdict === 'insufficient samples',
    ).length;
    const cases = rows.map((r) => {
      const text = `${r.label}: base ${r.base ?? '–'}, head ${r.head ?? '–'} ${r.unit}; budget ${r.budget}${r.interval ? `; ratio ${r.ratio} CI [${r.interval.join(', ')}]` : ''}${r.note ? `; ${r.note}` : ''}`;
      const body =
        r.verdict === 'regression'
          ? `<failure message="${xml(text)}" type="regression"/>`
          : r.verdict === 'skipped' || r.verdict === 'insufficient samples'
            ? `<skipped message="${xml(`${r.verdict}: ${text}`)}"/>`
            : `<system-out>${xml(text)}</system-out>`;
      return `    <testcase classname="gate.${xml(entry)}" name="${xml(r.label)}">${body}</testcase>`;
    });
    return [
      `  <testsuite name="gate ${xml(entry)}" tests="${rows.length}" failures="${failures}" skipped="${skipped}">`,
      ...cases,
      '  </testsuite>',
    ].join('\n');
  });
  const failures = report.rows.filter((r) => r.verdict === 'regression').length;
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="dataflow regression gate" tests="${report.rows.length}" failures="${failures}" time="${report.elapsedSec}">`,
    ...suites,
    '</testsuites>',
    '',
  ].join('\n');
}

export function writeGateReport(report: GateReport, resultsDir = 'results'): string {
  const id = `${report.startedAt.replace(/[:.]/g, '-')}-${report.mode}`;
  const root = join(resultsDir, 'gate');
  const dir = join(root, id);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'gate.json'), `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(join(dir, 'gate.md'), renderGateMarkdown(report));
  writeFileSync(join(dir, 'junit.xml'), renderGateJUnit(report));
  const latest = join(root, 'latest');
  rmSync(latest, { force: true });
  symlinkSync(id, latest);
  return dir;
}
