import type { BenchResults } from './results.ts';

/**
 * A bench run as OpenMetrics text with timestamps (`results/<run-id>/bench.om`), for the
 * "Bench history" dashboard: load it into any Prometheus with
 * `promtool tsdb create-blocks-from openmetrics bench.om <data dir>` (backfill; what a CI
 * job can run after `make bench`). Two gauges, one sample per figure and per finding,
 * at the run's finish time, labelled with the run id, git commit, profile and database;
 * beside each, the 95% interval of the estimates that have one (`bound` low and high).
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
  const figures = results.figures
    .filter((f) => f.value !== null && Number.isFinite(f.value))
    .map((f) => ({
      value: f.value!,
      interval: f.interval,
      labels: labels({
        ...run,
        suite: f.suite,
        scenario: f.scenario,
        metric: f.metric,
        unit: f.unit,
        preset: f.preset ?? 'none',
      }),
    }));
  const findings = results.findings
    .filter((f) => f.judged?.value != null && Number.isFinite(f.judged.value))
    .map((f) => ({
      value: f.judged!.value!,
      interval: f.interval,
      labels: labels({
        ...run,
        finding: f.finding,
        metric: f.metric,
        unit: f.unit,
        preset: f.judged?.preset ?? 'none',
        verdict: f.verdict,
        measured_on: f.measuredOn,
      }),
    }));
  type Sample = (typeof figures)[number];
  const family = (name: string, help: string, lines: string[]) => [
    `# TYPE ${name} gauge`,
    `# HELP ${name} ${help}`,
    ...lines,
  ];
  const values = (name: string, samples: Sample[]) =>
    samples.map((s) => `${name}{${s.labels}} ${s.value} ${at}`);
  // an estimate's 95% interval as a family of its own, `bound` low or high, same labels
  const intervals = (name: string, samples: Sample[]) =>
    samples.flatMap(({ interval, labels: l }) =>
      interval === undefined
        ? []
        : [
            `${name}{${l},bound="low"} ${interval.low} ${at}`,
            `${name}{${l},bound="high"} ${interval.high} ${at}`,
          ],
    );
  return [
    ...family(
      'dataflow_bench_figure',
      'One figure of a make bench run, in its own unit.',
      values('dataflow_bench_figure', figures),
    ),
    ...family(
      'dataflow_bench_figure_interval',
      "A figure's 95% interval (bound low or high), when it is an estimate from paired rounds.",
      intervals('dataflow_bench_figure_interval', figures),
    ),
    ...family(
      'dataflow_bench_finding',
      'The judged value of one audit finding in a make bench run; verdict in a label.',
      values('dataflow_bench_finding', findings),
    ),
    ...family(
      'dataflow_bench_finding_interval',
      "A finding's judged value's 95% interval (bound low or high), when it has one.",
      intervals('dataflow_bench_finding_interval', findings),
    ),
    '# EOF',
    '',
  ].join('\n');
}
