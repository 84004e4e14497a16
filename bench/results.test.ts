import { describe, expect, it } from 'vitest';
import { chartsOf, renderSvg } from './charts.ts';
import { benchOptionsFromEnv, PROFILE_SETTINGS } from './config.ts';
import { buildFindings } from './findings.ts';
import { benchOpenMetrics } from './openmetrics.ts';
import {
  type BenchResults,
  type Figure,
  findingsTable,
  RESULTS_SCHEMA,
  renderMarkdown,
} from './results.ts';

const options = benchOptionsFromEnv({ SUITE: 'overhead' });
const overhead = (metric: string, value: number, unit: string): Figure => ({
  suite: 'overhead',
  scenario: 'app overhead vs the bare runtime',
  preset: null,
  metric,
  value,
  unit,
  samples: 6,
});
const figures: Figure[] = [
  {
    ...overhead('app GET /health ÷ bare node:http (req/s)', 0.84, 'x'),
    interval: { low: 0.78, high: 0.9 },
  },
  // a figure that is no estimate has no interval
  overhead('req/s: bare node:http hello', 9204, 'req/s'),
];
const results: BenchResults = {
  schema: RESULTS_SCHEMA,
  runId: 'run-1',
  complete: true,
  startedAt: '2026-12-03T14:00:00.000Z',
  finishedAt: '2026-12-03T14:01:00.000Z',
  machine: { cpus: 2, cpuModel: 'test', memoryGiB: 24, node: 'v20', platform: 'linux' },
  git: { sha: 'a'.repeat(40), dirty: false },
  config: { ...options, settings: PROFILE_SETTINGS[options.profile] },
  figures,
  findings: buildFindings(figures, options),
  warnings: [],
  failures: [],
};
const finding = 'App overhead: GET /health';

describe("a figure's 95% interval", () => {
  it('goes with the finding that judges the figure', () => {
    expect(results.findings.find((f) => f.finding === finding)).toMatchObject({
      judged: { value: 0.84 },
      interval: { low: 0.78, high: 0.9 },
    });
  });

  it('shows beside the judged value in the findings table, and in its own column of the figures', () => {
    const [header, ...rows] = findingsTable(results);
    const row = rows.find((r) => r[0] === finding)!;
    expect(row[header!.indexOf('ratio')]).toBe('0.84x (0.78–0.9)');
    const md = renderMarkdown(results);
    expect(md).toContain('| metric | value | 95% interval | unit |');
    expect(md).toContain('| app GET /health ÷ bare node:http (req/s) | 0.84 | 0.78–0.9 | x | 6 |');
    expect(md).toContain('| req/s: bare node:http hello | 9204 |  | req/s | 6 |');
  });

  it('is a family of its own in the OpenMetrics export, a sample per bound', () => {
    const om = benchOpenMetrics(results);
    const at = '1796306460.000';
    expect(om).toMatch(
      new RegExp(
        `\\ndataflow_bench_figure_interval\\{run_id="run-1",[^}]*metric="app GET /health ÷ bare node:http \\(req/s\\)",unit="x",preset="none",bound="low"\\} 0\\.78 ${at}\\n`,
      ),
    );
    expect(om).toMatch(
      new RegExp(
        `\\ndataflow_bench_finding_interval\\{[^}]*finding="${finding}",[^}]*bound="high"\\} 0\\.9 ${at}\\n`,
      ),
    );
    // only the estimate has one
    expect(om.match(/^dataflow_bench_figure_interval\{/gm)).toHaveLength(2);
    // OpenMetrics wants each family's samples together, after its TYPE line
    const families = om
      .split('\n')
      .filter((line) => line.startsWith('dataflow_'))
      .map((line) => line.slice(0, line.indexOf('{')));
    expect(families).toEqual([...families].sort((a, b) => order(a) - order(b)));
    expect(om.endsWith('# EOF\n')).toBe(true);
  });
});

const ORDER = [
  'dataflow_bench_figure',
  'dataflow_bench_figure_interval',
  'dataflow_bench_finding',
  'dataflow_bench_finding_interval',
];
const order = (family: string) => ORDER.indexOf(family);

describe("a finding's chart", () => {
  it('draws the judged estimate with its interval', async () => {
    const chart = chartsOf(results).find((c) => c.title === finding)!;
    const layers = (chart.spec as { layer?: Array<{ mark: { type: string } }> }).layer;
    expect(layers?.map((l) => l.mark.type)).toEqual(['bar', 'errorbar']);
    const svg = await renderSvg(chart.spec);
    expect(svg).toMatch(/^<svg/);
    expect(svg).toContain('aria-roledescription="bar"');
    // the interval's line, from its low end to its high end
    expect(svg).toMatch(
      /aria-label="[^"]*high: 0\.9; low: 0\.78" [^>]*aria-roledescription="errorbar"/,
    );
  });
});
