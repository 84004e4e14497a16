import type { FlatSpan } from './otlp.ts';

/**
 * The trace analyzer: turns spans into the audit's numbers. Per route (the server span's
 * `http.route`) and overall:
 * - DB round trips per request (DB spans under the request);
 * - N+1: requests with a run of same-shape queries (`db.query.summary`) under one parent;
 * - redundant fetches: identical reads (`dataflow.db.fingerprint`) issued by different
 *   requests within a window of each other (what coalescing and caching remove);
 * - critical path: each stage's self time (auth / cache / db / rest);
 * and the webhook -> WebSocket client latency (server span start to `realtime.receive`).
 */
export const REPORT_SCHEMA = 'dataflow.trace-report/v1';

export interface AnalyzeOptions {
  /** Same-shape queries under one parent that make an N+1. @default 3 */
  nPlusOneMin?: number;
  /** Identical reads closer than this (ms) in different requests are redundant. @default 100 */
  redundantWindowMs?: number;
}

export interface Distribution {
  samples: number;
  mean: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

export interface RouteReport {
  route: string;
  requests: number;
  durationMs: Distribution;
  dbRoundTrips: Distribution;
  nPlusOne: { requests: number; worst: { query: string; count: number } | null };
  reads: number;
  redundantReads: number;
  /** Mean self time per request, ms. `rest` is the server's own time outside the stages. */
  criticalPathMs: { auth: number; cache: number; db: number; rest: number };
  /** Every stage's mean self time (coalesce, batch, serialize, sync, …). */
  stagesMs: Record<string, number>;
}

export interface TraceReport {
  schema: typeof REPORT_SCHEMA;
  spans: number;
  traces: number;
  routes: RouteReport[];
  overall: RouteReport;
  webhookToClientMs: Distribution | null;
}

const SERVER = 2;
const DB_SUMMARY = 'db.query.summary';

export function analyze(spans: readonly FlatSpan[], options: AnalyzeOptions = {}): TraceReport {
  const nPlusOneMin = options.nPlusOneMin ?? 3;
  const windowMs = options.redundantWindowMs ?? 100;
  const children = new Map<string, FlatSpan[]>();
  const traces = new Set<string>();
  for (const span of spans) {
    traces.add(span.traceId);
    push(children, `${span.traceId}/${span.parentSpanId}`, span);
  }
  const childrenOf = (span: FlatSpan) => children.get(`${span.traceId}/${span.spanId}`) ?? [];
  const requests = spans.filter((s) => s.kind === SERVER);

  // per request: its descendants, DB spans, N+1 runs and stage self times
  interface RequestFacts {
    route: string;
    durationMs: number;
    db: FlatSpan[];
    worstRun: { query: string; count: number } | null;
    selfMs: Record<string, number>;
  }
  const facts: RequestFacts[] = [];
  const readOwners: Array<{ fingerprint: string; start: number; request: number }> = [];
  for (const request of requests) {
    const route = String(request.attributes['http.route'] ?? request.name);
    const db: FlatSpan[] = [];
    const selfMs: Record<string, number> = {};
    let worstRun: RequestFacts['worstRun'] = null;
    const stack = [request];
    while (stack.length > 0) {
      const span = stack.pop()!;
      const kids = childrenOf(span).filter((k) => k.kind !== SERVER); // a nested request is its own
      stack.push(...kids);
      if (span !== request) {
        const stage = String(span.attributes['dataflow.stage'] ?? 'other');
        selfMs[stage] = (selfMs[stage] ?? 0) + selfTime(span, kids);
        if (span.attributes[DB_SUMMARY] !== undefined) db.push(span);
      }
      // N+1: same-shape queries under this one parent
      const runs = new Map<string, number>();
      for (const kid of kids) {
        const summary = kid.attributes[DB_SUMMARY];
        if (summary !== undefined) runs.set(String(summary), (runs.get(String(summary)) ?? 0) + 1);
      }
      for (const [query, count] of runs) {
        if (count >= nPlusOneMin && count > (worstRun?.count ?? 0)) worstRun = { query, count };
      }
    }
    const index = facts.length;
    for (const span of db) {
      const fingerprint = span.attributes['dataflow.db.fingerprint'];
      if (fingerprint !== undefined)
        readOwners.push({ fingerprint: String(fingerprint), start: span.start, request: index });
    }
    const stagesTotal = Object.values(selfMs).reduce((a, b) => a + b, 0);
    selfMs.rest = Math.max(0, request.end - request.start - stagesTotal) + (selfMs.other ?? 0);
    delete selfMs.other;
    facts.push({ route, durationMs: request.end - request.start, db, worstRun, selfMs });
  }

  // redundant: an identical read from another request started within the window before
  const redundantByRequest = new Map<number, number>();
  const byFingerprint = new Map<string, typeof readOwners>();
  for (const read of readOwners) {
    push(byFingerprint, read.fingerprint, read);
  }
  for (const list of byFingerprint.values()) {
    list.sort((a, b) => a.start - b.start);
    for (let i = 1; i < list.length; i++) {
      const read = list[i]!;
      for (let j = i - 1; j >= 0 && read.start - list[j]!.start <= windowMs; j--) {
        if (list[j]!.request !== read.request) {
          redundantByRequest.set(read.request, (redundantByRequest.get(read.request) ?? 0) + 1);
          break;
        }
      }
    }
  }

  const summarize = (route: string, indexes: number[]): RouteReport => {
    const selected = indexes.map((i) => facts[i]!);
    const mean = (pick: (f: RequestFacts) => number) =>
      selected.length === 0 ? 0 : selected.reduce((a, f) => a + pick(f), 0) / selected.length;
    const stages = new Set(selected.flatMap((f) => Object.keys(f.selfMs)));
    const stagesMs: Record<string, number> = {};
    for (const stage of [...stages].sort())
      stagesMs[stage] = round(mean((f) => f.selfMs[stage] ?? 0));
    const withRun = selected.filter((f) => f.worstRun !== null);
    const worst = withRun.reduce<RouteReport['nPlusOne']['worst']>(
      (w, f) => (f.worstRun!.count > (w?.count ?? 0) ? f.worstRun : w),
      null,
    );
    return {
      route,
      requests: selected.length,
      durationMs: distribution(selected.map((f) => f.durationMs)),
      dbRoundTrips: distribution(selected.map((f) => f.db.length)),
      nPlusOne: { requests: withRun.length, worst },
      reads: selected.reduce(
        (a, f) =>
          a + f.db.filter((s) => s.attributes['dataflow.db.fingerprint'] !== undefined).length,
        0,
      ),
      redundantReads: indexes.reduce((a, i) => a + (redundantByRequest.get(i) ?? 0), 0),
      criticalPathMs: {
        auth: stagesMs.auth ?? 0,
        cache: stagesMs.cache ?? 0,
        db: stagesMs.db ?? 0,
        rest: round(
          mean(
            (f) => f.durationMs - (f.selfMs.auth ?? 0) - (f.selfMs.cache ?? 0) - (f.selfMs.db ?? 0),
          ),
        ),
      },
      stagesMs,
    };
  };

  const routes = new Map<string, number[]>();
  facts.forEach((f, i) => {
    push(routes, f.route, i);
  });

  // webhook -> client: from the webhook request's start to each receipt in its trace
  const webhookStart = new Map<string, number>();
  for (const request of requests) {
    if (String(request.attributes['http.route'] ?? '').startsWith('/webhooks/')) {
      const known = webhookStart.get(request.traceId);
      if (known === undefined || request.start < known)
        webhookStart.set(request.traceId, request.start);
    }
  }
  const pushLatencies = spans
    .filter((s) => s.name === 'realtime.receive' && webhookStart.has(s.traceId))
    .map((s) => s.end - webhookStart.get(s.traceId)!);

  return {
    schema: REPORT_SCHEMA,
    spans: spans.length,
    traces: traces.size,
    routes: [...routes]
      .map(([route, indexes]) => summarize(route, indexes))
      .sort((a, b) => b.requests - a.requests),
    overall: summarize(
      '(all)',
      facts.map((_, i) => i),
    ),
    webhookToClientMs: pushLatencies.length > 0 ? distribution(pushLatencies) : null,
  };
}

function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

/** A span's duration minus the part covered by its children (their union, clipped). */
function selfTime(span: FlatSpan, kids: readonly FlatSpan[]): number {
  const intervals = kids
    .map((k) => [Math.max(k.start, span.start), Math.min(k.end, span.end)] as const)
    .filter(([a, b]) => b > a)
    .sort((x, y) => x[0] - y[0]);
  let covered = 0;
  let [from, to] = [Number.NEGATIVE_INFINITY, Number.NEGATIVE_INFINITY];
  for (const [a, b] of intervals) {
    if (a > to) {
      if (to > from) covered += to - from;
      [from, to] = [a, b];
    } else to = Math.max(to, b);
  }
  if (to > from) covered += to - from;
  return Math.max(0, span.end - span.start - covered);
}

export function distribution(values: readonly number[]): Distribution {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) =>
    sorted.length === 0
      ? 0
      : sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
  const sum = sorted.reduce((a, b) => a + b, 0);
  return {
    samples: sorted.length,
    mean: round(sorted.length === 0 ? 0 : sum / sorted.length),
    p50: round(at(0.5)),
    p95: round(at(0.95)),
    p99: round(at(0.99)),
    max: round(sorted.at(-1) ?? 0),
  };
}

function round(value: number): number {
  return Math.round(value * 1000) / 1000;
}
