import {
  LegendDisplayMode,
  LegendPlacement,
  VizLegendOptionsBuilder,
} from '@grafana/grafana-foundation-sdk/common';
import {
  DashboardBuilder,
  DashboardCursorSync,
  DatasourceVariableBuilder,
  RowBuilder,
} from '@grafana/grafana-foundation-sdk/dashboard';
import { DataqueryBuilder } from '@grafana/grafana-foundation-sdk/prometheus';
import { PanelBuilder as StatPanel } from '@grafana/grafana-foundation-sdk/stat';
import { PanelBuilder as TimeseriesPanel } from '@grafana/grafana-foundation-sdk/timeseries';

/**
 * The few shapes every dashboard is made of, so that each panel states only what it
 * measures: a title, the question it answers, a unit and its PromQL. The datasource is
 * always the `datasource` template variable; rates always use `$__rate_interval`;
 * percentiles always come from `histogram_quantile` over summed bucket rates.
 */
// biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's variable syntax, not a JS template
export const DATASOURCE = { type: 'prometheus', uid: '${datasource}' } as const;

export interface Query {
  expr: string;
  legend?: string;
}

export interface PanelSpec {
  title: string;
  /** The question the panel answers (shown as its description). */
  description: string;
  /** A Grafana unit id: s, ms, bytes, percentunit, reqps, ops, short, none. */
  unit: string;
  queries: Query[];
  /** Constant lines drawn on the panel (SLOs from bench/budgets.ts). */
  lines?: Array<{ value: number; label: string }>;
}

function target(q: Query, i: number) {
  const builder = new DataqueryBuilder()
    .expr(q.expr)
    .refId(String.fromCharCode(65 + i))
    .datasource(DATASOURCE);
  return q.legend ? builder.legendFormat(q.legend) : builder;
}

export function timeseries(spec: PanelSpec) {
  let panel = new TimeseriesPanel()
    .title(spec.title)
    .description(spec.description)
    .unit(spec.unit)
    .datasource(DATASOURCE)
    .legend(
      new VizLegendOptionsBuilder()
        .showLegend(true)
        .displayMode(LegendDisplayMode.List)
        .placement(LegendPlacement.Bottom),
    )
    .height(8)
    .span(12);
  spec.queries.forEach((q, i) => {
    panel = panel.withTarget(target(q, i));
  });
  for (const [i, line] of (spec.lines ?? []).entries()) {
    panel = panel.withTarget(
      target({ expr: `vector(${line.value})`, legend: line.label }, i + spec.queries.length),
    );
  }
  return panel;
}

export function stat(spec: PanelSpec) {
  let panel = new StatPanel()
    .title(spec.title)
    .description(spec.description)
    .unit(spec.unit)
    .datasource(DATASOURCE)
    .height(5)
    .span(6);
  spec.queries.forEach((q, i) => {
    panel = panel.withTarget(target(q, i));
  });
  return panel;
}

export type Panel = ReturnType<typeof timeseries> | ReturnType<typeof stat>;

/** A dashboard: stable uid, the datasource variable, rows of panels. */
export function dashboard(
  uid: string,
  title: string,
  description: string,
  rows: Array<{ title: string; panels: Panel[] }>,
) {
  let builder = new DashboardBuilder(title)
    .uid(uid)
    .description(description)
    .tags(['dataflow', 'generated'])
    .editable()
    .tooltip(DashboardCursorSync.Crosshair)
    .refresh('30s')
    .time({ from: 'now-1h', to: 'now' })
    .timezone('browser')
    .withVariable(
      new DatasourceVariableBuilder('datasource').label('Prometheus').type('prometheus'),
    );
  for (const row of rows) {
    builder = builder.withRow(new RowBuilder(row.title));
    for (const panel of row.panels) builder = builder.withPanel(panel);
  }
  return builder.build();
}

/** p-quantile of a duration histogram, from summed bucket rates (never an average of percentiles). */
export function quantile(q: number, histogram: string, by: string[] = [], where = ''): string {
  const group = ['le', ...by].join(', ');
  return `histogram_quantile(${q}, sum by (${group}) (rate(${histogram}_bucket${where}[$__rate_interval])))`;
}

export const rate = (series: string) => `rate(${series}[$__rate_interval])`;
