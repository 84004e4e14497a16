import type { BenchResults } from './results.ts';

/**
 * A bench run as OpenMetrics text with timestamps (`results/<run-id>/bench.om`), for the
 * "Bench history" dashboard: load it into any Prometheus with
 * `promtool tsdb create-blocks-from openmetrics bench.om <data dir>` (backfill; what a CI
 * job can run after `make bench`). Two gauges, one sample per figure and per finding,
 * at the run's finish time, labelled with the run id, git commit, profile and database.
 */
const escapeLabel = (value: string) =>
  value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');

function labels(values: Record<string, string | null | undefined>): string {
  return Object.entries(values)
    .filter(([, v]) => v !== null && v !== undefined)
    .map(([k, v]) => `${k}="${escapeLabel(v!)}"`)
    .join(',');
}

export function benchOpenMetrics(results: BenchResults): string {
  const at = (Date.parse(results.finishedAt) / 1000).toFixed(3);
  const run = {
    run_id: results.runId,
    git_commit: results.git.sha,
    profile: results.config.profile,
    db: results.config.db,
  };
  const lines = [
    '# TYPE dataflow_bench_figure gauge',
    '# HELP dataflow_bench_figure One figure of a make bench run, in its own unit.',
  ];
  for (const f of results.figures) {
    if (f.value === null || !Number.isFinite(f.value)) continue;
    const l = labels({
      ...run,
      suite: f.suite,
      scenario: f.scenario,
      metric: f.metric,
      unit: f.unit,
      preset: f.preset ?? 'none',
    });
    lines.push(`dataflow_bench_figure{${l}} ${f.value} ${at}`);
  }
  lines.push(
    '# TYPE dataflow_bench_finding gauge',
    '# HELP dataflow_bench_finding The judged value of one audit finding in a make bench run; verdict in a label.',
  );
  for (const f of results.findings) {
    const value = f.judged?.value;
    if (value === null || value === undefined || !Number.isFinite(value)) continue;
    const l = labels({
      ...run,
      finding: f.finding,
      metric: f.metric,
      unit: f.unit,
      preset: f.judged?.preset ?? 'none',
      verdict: f.verdict,
      measured_on: f.measuredOn,
    });
    lines.push(`dataflow_bench_finding{${l}} ${value} ${at}`);
  }
  lines.push('# EOF', '');
  return lines.join('\n');
}
