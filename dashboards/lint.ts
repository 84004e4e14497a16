import { DATASOURCE } from './panels.ts';

/**
 * Rules every panel keeps, checked on the built JSON (so a hand edit is caught too):
 * - a title, a description (the question it answers) and a unit;
 * - the datasource is the `${datasource}` template variable, never a fixed uid;
 * - no average of percentiles: `avg(` over a `histogram_quantile` or a `quantile`
 *   series, and `histogram_quantile` only over summed `rate(..._bucket[...])`;
 * - `rate`/`increase` windows are `$__rate_interval` (never shorter than two scrapes).
 */
interface PanelJson {
  title?: string;
  description?: string;
  type?: string;
  datasource?: { type?: string; uid?: string };
  fieldConfig?: { defaults?: { unit?: string } };
  targets?: Array<{ expr?: string; datasource?: { uid?: string } }>;
}

export function lintDashboard(dashboard: {
  title?: string;
  uid?: string;
  panels?: unknown[];
}): string[] {
  const problems: string[] = [];
  if (!dashboard.uid) problems.push(`${dashboard.title}: no stable uid`);
  for (const raw of dashboard.panels ?? []) {
    const panel = raw as PanelJson;
    if (panel.type === 'row') continue;
    const where = `${dashboard.title} / ${panel.title ?? '(untitled)'}`;
    if (!panel.title) problems.push(`${where}: no title`);
    if (!panel.description) problems.push(`${where}: no description`);
    if (!panel.fieldConfig?.defaults?.unit) problems.push(`${where}: no unit`);
    if (panel.datasource?.uid !== DATASOURCE.uid) {
      problems.push(
        `${where}: datasource ${JSON.stringify(panel.datasource)} is not \${datasource}`,
      );
    }
    for (const target of panel.targets ?? []) {
      const expr = target.expr ?? '';
      if (target.datasource?.uid !== DATASOURCE.uid) {
        problems.push(`${where}: a query's datasource is not \${datasource}`);
      }
      problems.push(...lintExpr(expr).map((p) => `${where}: ${p} in ${expr}`));
    }
  }
  return problems;
}

export function lintExpr(expr: string): string[] {
  const problems: string[] = [];
  if (/avg(_over_time)?\s*(by\s*\([^)]*\)\s*)?\(\s*histogram_quantile/.test(expr)) {
    problems.push('an average of percentiles');
  }
  if (/avg(_over_time)?\s*(by\s*\([^)]*\)\s*)?\([^()]*(quantile|_p\d\d)\b/.test(expr)) {
    problems.push('an average of percentiles');
  }
  for (const m of expr.matchAll(/histogram_quantile\(\s*[\d.]+\s*,\s*(.*)$/g)) {
    if (!/^sum\s*(by\s*\([^)]*\)\s*)?\(\s*rate\([a-z_:]+_bucket/.test(m[1]!)) {
      problems.push('histogram_quantile not over summed bucket rates');
    }
  }
  for (const m of expr.matchAll(/\b(rate|increase|irate)\([^[\]]*\[([^\]]+)\]/g)) {
    if (m[2] !== '$__rate_interval')
      problems.push(`${m[1]} over [${m[2]}], not [$__rate_interval]`);
  }
  return problems;
}
