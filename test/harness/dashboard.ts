/**
 * Reading the Grafana dashboard in docs/: its PromQL expressions and the
 * metric names they use, so a test can hold them against a real /metrics.
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { PROJECT_ROOT } from '../../src/native/binding';

export const DASHBOARD_PATH = path.join(PROJECT_ROOT, 'docs', 'grafana-dashboard.json');

/** PromQL words that look like names: aggregations, modifiers, set operators. */
const KEYWORDS = new Set([
  'sum', 'min', 'max', 'avg', 'group', 'stddev', 'stdvar', 'count', 'count_values', 'bottomk', 'topk', 'quantile',
  'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'and', 'or', 'unless', 'bool', 'offset', 'inf', 'nan',
]);

/** Pure: the metric names a PromQL expression selects (not functions, labels, keywords or numbers). */
export function metricNames(expr: string): string[] {
  let s = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""');
  s = s.replace(/\{[^}]*\}/g, ' ');
  s = s.replace(/\[[^\]]*\]/g, ' ');
  s = s.replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names = new Set<string>();
  for (const m of s.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const before = s[m.index - 1] ?? ' ';
    if (/[0-9.$]/.test(before)) continue; // 1e3, $var
    if (/^\s*\(/.test(s.slice(m.index + m[0].length))) continue; // a function call
    if (KEYWORDS.has(m[0].toLowerCase())) continue;
    names.add(m[0]);
  }
  return [...names].sort();
}

/** Pure: the metric a Grafana `label_values(metric{...}, label)` variable query reads, if any. */
export function labelValuesMetric(query: string): string | null {
  const m = /^\s*label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(?:\{[^}]*\})?\s*,/.exec(query);
  return m ? m[1]! : null;
}

interface Target { expr?: string }
interface Panel { title?: string; targets?: Target[]; panels?: Panel[] }
interface Dashboard { panels?: Panel[]; templating?: { list?: Array<{ type?: string; query?: string | { query?: string } }> } }

export function readDashboard(file = DASHBOARD_PATH): Dashboard {
  return JSON.parse(readFileSync(file, 'utf8')) as Dashboard;
}

/** Every panel query, with the panel's title. */
export function dashboardExpressions(d: Dashboard): Array<{ panel: string; expr: string }> {
  const out: Array<{ panel: string; expr: string }> = [];
  const visit = (ps: Panel[]): void => {
    for (const p of ps) {
      for (const t of p.targets ?? []) if (t.expr) out.push({ panel: p.title ?? '?', expr: t.expr });
      visit(p.panels ?? []);
    }
  };
  visit(d.panels ?? []);
  return out;
}

/** Every metric name the dashboard reads: panel queries and variable queries. */
export function dashboardMetricNames(d: Dashboard): string[] {
  const names = new Set(dashboardExpressions(d).flatMap((e) => metricNames(e.expr)));
  for (const v of d.templating?.list ?? []) {
    if (v.type !== 'query') continue;
    const q = typeof v.query === 'string' ? v.query : v.query?.query ?? '';
    const m = labelValuesMetric(q);
    if (m) names.add(m);
  }
  return [...names].sort();
}

/** Grafana's variables replaced by values Prometheus accepts, to run a panel query as is. */
export function withGrafanaVariables(expr: string): string {
  return expr.replace(/\$__rate_interval|\$__interval/g, '1m').replace(/\$\{?(job|instance)\}?/g, '.*');
}
