import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { anchorLines, type BenchResults, findingsTable } from './results.ts';
import { MEMBERS } from './suites/members.ts';

/**
 * The report as pictures: `report.html` (one file: the findings table, the notes and a
 * chart per finding) and `charts/*.svg` (what a PR comment can embed). Vega-Lite
 * compiled to Vega and rendered to SVG in process, no browser.
 */
export interface Chart {
  slug: string;
  title: string;
  spec: TopLevelSpec;
}

const slugOf = (text: string) =>
  text
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-|-$/g, '');

interface Bar {
  label: string;
  value: number;
  series?: string;
  /** The value's 95% interval, drawn as a line across the bar's end. */
  low?: number;
  high?: number;
}

function bars(title: string, subtitle: string, unit: string, rows: Bar[]): TopLevelSpec {
  const grouped = rows.some((r) => r.series !== undefined);
  const y = { field: 'label', type: 'nominal', title: null, sort: null } as const;
  const bar = {
    mark: { type: 'bar', tooltip: true },
    encoding: {
      y,
      x: { field: 'value', type: 'quantitative', title: unit },
      ...(grouped
        ? {
            color: { field: 'series', type: 'nominal', title: null } as const,
            yOffset: { field: 'series' },
          }
        : {}),
    },
  } as const;
  const head = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: title, subtitle, anchor: 'start' },
    width: 420,
    height: 180,
    data: { values: rows },
  } as const;
  if (!rows.some((r) => r.low !== undefined)) return { ...head, ...bar };
  const interval = {
    mark: { type: 'errorbar', ticks: true, color: '#222' },
    encoding: {
      y,
      x: { field: 'low', type: 'quantitative', title: unit },
      x2: { field: 'high' },
    },
  } as const;
  return { ...head, layer: [bar, interval] };
}

export function chartsOf(results: BenchResults): Chart[] {
  const charts: Chart[] = [];
  for (const f of results.findings) {
    const rows: Bar[] = [];
    if (f.baseline !== null) rows.push({ label: 'baseline', value: f.baseline });
    for (const [preset, value] of Object.entries(f.presets)) {
      if (value !== null) rows.push({ label: preset, value });
    }
    if (rows.length === 0 && f.judged?.value != null) {
      rows.push({ label: f.judged.preset ?? 'measured', value: f.judged.value, ...f.interval });
    }
    if (rows.length === 0) continue;
    charts.push({
      slug: slugOf(f.finding),
      title: f.finding,
      spec: bars(
        `${f.finding}: ${f.verdict}`,
        `${f.metric} (${f.unit}), target ${f.target}; ${f.measuredOn}`,
        f.unit,
        rows,
      ),
    });
  }
  // latency percentiles per preset, closed and open model
  const latency = results.figures.filter(
    (x) =>
      x.suite === 'members' &&
      x.scenario === MEMBERS &&
      x.value !== null &&
      ['latency p50', 'latency p99', 'open: latency p95', 'open: latency p95 uncorrected'].includes(
        x.metric,
      ),
  );
  if (latency.length > 0) {
    charts.push({
      slug: 'members-latency-per-preset',
      title: 'Members page latency per preset',
      spec: bars(
        'Members page latency per preset',
        'closed model p50 and p99; open model (100 req/s offered) p95, corrected for coordinated omission and not',
        'ms',
        latency.map((x) => ({ label: x.preset ?? '-', value: x.value!, series: x.metric })),
      ),
    });
  }
  return charts;
}

export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

const escapeHtml = (text: string) =>
  text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** Writes `<dir>/charts/<slug>.svg` and `<dir>/report.html`; returns the HTML path. */
export async function writeReportHtml(results: BenchResults, dir: string): Promise<string> {
  const charts = chartsOf(results);
  mkdirSync(join(dir, 'charts'), { recursive: true });
  const figures: string[] = [];
  for (const chart of charts) {
    const svg = await renderSvg(chart.spec);
    writeFileSync(join(dir, 'charts', `${chart.slug}.svg`), svg);
    figures.push(`<figure id="${chart.slug}">${svg}</figure>`);
  }
  const table = findingsTable(results);
  const row = (cells: string[], tag: 'th' | 'td') =>
    `<tr>${cells.map((c) => `<${tag}>${escapeHtml(c)}</${tag}>`).join('')}</tr>`;
  const notes = [
    ...anchorLines(results),
    ...results.findings.filter((f) => f.note).map((f) => `${f.finding}: ${f.note}`),
    ...results.warnings.map((w) => `warning: ${w}`),
  ];
  const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Findings, run ${escapeHtml(results.runId)}</title>
<style>
body { font: 14px system-ui, sans-serif; margin: 2rem; color: #222 }
table { border-collapse: collapse; font-size: 12px } td, th { border: 1px solid #ccc; padding: 3px 6px }
th { background: #f3f3f3 } figure { display: inline-block; margin: 1rem 1rem 0 0 }
</style></head><body>
<h1>Findings, run ${escapeHtml(results.runId)}${results.complete ? '' : ' (INCOMPLETE)'}</h1>
<p>Profile <b>${escapeHtml(results.config.profile)}</b>, DB ${escapeHtml(results.config.db)}, RTT ${results.config.rttMs} ms,
git ${escapeHtml(results.git.sha.slice(0, 12))}${results.git.dirty ? ' (dirty)' : ''}, ${results.machine.cpus} CPUs
(${escapeHtml(results.machine.cpuModel)}), Node ${escapeHtml(results.machine.node)}.</p>
<table>${row(table[0]!, 'th')}${table
    .slice(1)
    .map((r) => row(r, 'td'))
    .join('')}</table>
<ul>${notes.map((n) => `<li>${escapeHtml(n)}</li>`).join('')}</ul>
${figures.join('\n')}
</body></html>
`;
  const file = join(dir, 'report.html');
  writeFileSync(file, html);
  return file;
}
