import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { renderDashboards } from '../../dashboards/build.ts';
import { allDashboards } from '../../dashboards/definitions.ts';
import { lintDashboard, lintExpr } from '../../dashboards/lint.ts';
import { verifyDashboards } from '../../dashboards/verify.ts';

describe('dashboards as code', () => {
  it('the committed JSON is what the code builds (run make dashboards)', () => {
    for (const [file, text] of renderDashboards()) {
      expect(readFileSync(file, 'utf8'), file).toBe(text);
    }
  });

  it('stable uids, the datasource variable, and a unit and a description on every panel', () => {
    const uids = new Set<string>();
    for (const dashboard of Object.values(allDashboards())) {
      expect(lintDashboard(dashboard)).toEqual([]);
      expect(uids.has(dashboard.uid!)).toBe(false);
      uids.add(dashboard.uid!);
      expect(dashboard.templating?.list?.[0]).toMatchObject({
        type: 'datasource',
        name: 'datasource',
      });
    }
    expect(uids.size).toBe(7);
  });

  it('the lint catches each rule it names', () => {
    expect(
      lintExpr('avg(histogram_quantile(0.99, sum by (le) (rate(x_bucket[$__rate_interval]))))'),
    ).toContain('an average of percentiles');
    expect(lintExpr('avg by (route) (nodejs_eventloop_delay_p99)')).toContain(
      'an average of percentiles',
    );
    expect(lintExpr('histogram_quantile(0.99, rate(x_bucket[$__rate_interval]))')).toContain(
      'histogram_quantile not over summed bucket rates',
    );
    expect(lintExpr('rate(x_total[30s])')).toEqual(['rate over [30s], not [$__rate_interval]']);
    expect(lintExpr('sum(rate(x_total[$__rate_interval]))')).toEqual([]);
    const panel = {
      type: 'timeseries',
      title: 'p',
      datasource: { type: 'prometheus', uid: 'P1234' },
      fieldConfig: { defaults: {} },
      targets: [{ expr: 'up', datasource: { uid: 'P1234' } }],
    };
    const problems = lintDashboard({ title: 'd', uid: 'd', panels: [panel] });
    expect(problems.join('\n')).toMatch(/no description/);
    expect(problems.join('\n')).toMatch(/no unit/);
    expect(problems.join('\n')).toMatch(/datasource .* is not \$\{datasource\}/);
  });
});

describe('make dashboards-verify (a real Prometheus scraping the app under load)', () => {
  it('every panel query of every dashboard returns series, and a broken one is named', async () => {
    const dashboards = allDashboards();
    // a copy of the runtime dashboard with one metric misspelled and one query malformed
    const broken = JSON.parse(JSON.stringify(dashboards.runtime)) as typeof dashboards.runtime;
    const targets = broken.panels!.flatMap(
      (p) => (p as { targets?: Array<{ expr: string }> }).targets ?? [],
    );
    targets[0]!.expr = 'nodejs_eventloop_delay_p999';
    targets[1]!.expr = 'sum(process_memory_heap_used';
    const { queries, failures } = await verifyDashboards(() => {}, { ...dashboards, broken });
    expect(queries).toBeGreaterThan(30);
    expect(failures.map((f) => [f.dashboard, f.panel, f.problem.split(':')[0]])).toEqual([
      ['broken', 'Event-loop delay p99', 'no series'],
      ['broken', 'Heap used and RSS', 'error'],
    ]);
  }, 120_000);
});
