import type { FlatSpan } from './otlp.ts';

/**
 * The trace analyzer: turns spans into the audit's numbers. Per route (the server span's
 * `http.route`) and overall:
 * - DB round trips per request (DB spans under the request);
 * - N+1: requests with a run of same-shape queries (`db.query.summary`) under one parent;
 * - redundant fetches: identical reads (`dataflow.db.fingerprint`) issued by different
 *   requests within a window of each other (what coalescing and caching remove);
 * - critical path: where the request's wall time goes, on its timeline: an instant in
 *   which a DB span (any number of them, concurrent) runs counts once for `db`; an
 *   instant shared by several stages is split evenly between them; `rest` is what no
 *   stage covers. The stages and `rest` add up to the request's duration, never more,
 *   never negative. Next to it, `work`: the summed self time of each stage's spans
 *   (what the request caused, e.g. 50 concurrent lookups of 0.5 ms are 25 ms of DB work
 *   in 0.5 ms of wall time);
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
  /**
   * Mean wall time per request on the timeline, ms: auth + cache + db + rest = duration.
   * `rest` is the server's own time outside the stages.
   */
  criticalPathMs: { auth: number; cache: number; db: number; rest: number };
  /** Every stage's mean wall time on the timeline (coalesce, batch, serialize, sync, …). */
  stagesMs: Record<string, number>;
  /** Every stage's mean summed self time (work done, concurrent spans added up). */
  workMs: Record<string, number>;
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
    /** Wall time per stage on the timeline, `rest` included. */
    wallMs: Record<string, number>;
    /** Summed self time per stage. */
    workMs: Record<string, number>;
  }
  const facts: RequestFacts[] = [];
  const readOwners: Array<{ fingerprint: string; start: number; request: number }> = [];
  for (const request of requests) {
    const route = String(request.attributes['http.route'] ?? request.name);
    const db: FlatSpan[] = [];
    const workMs: Record<string, number> = {};
    const selfIntervals: Array<{ stage: string; from: number; to: number }> = [];
    let worstRun: RequestFacts['worstRun'] = null;
    const stack = [request];
    while (stack.length > 0) {
      const span = stack.pop()!;
      const kids = childrenOf(span).filter((k) => k.kind !== SERVER); // a nested request is its own
      stack.push(...kids);
      if (span !== request) {
        const stage = String(span.attributes['dataflow.stage'] ?? 'other');
        const own = selfIntervalsOf(span, kids, request);
        workMs[stage] = (workMs[stage] ?? 0) + own.reduce((a, [from, to]) => a + to - from, 0);
        // a span without a stage is the server's own work: it belongs to `rest`
        if (stage !== 'other')
          for (const [from, to] of own) selfIntervals.push({ stage, from, to });
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
    const durationMs = request.end - request.start;
    const wallMs = timeline(selfIntervals);
    const staged = Object.values(wallMs).reduce((a, b) => a + b, 0);
    wallMs.rest = Math.max(0, durationMs - staged);
    workMs.rest = (workMs.other ?? 0) + Math.max(0, durationMs - staged);
    delete workMs.other;
    facts.push({ route, durationMs, db, worstRun, wallMs, workMs });
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
    const stages = [...new Set(selected.flatMap((f) => Object.keys(f.workMs)))].sort();
    const stagesMs: Record<string, number> = {};
    const workMs: Record<string, number> = {};
    for (const stage of stages) {
      stagesMs[stage] = round(mean((f) => f.wallMs[stage] ?? 0));
      workMs[stage] = round(mean((f) => f.workMs[stage] ?? 0));
    }
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
        // every other stage's wall time is the server's own, as far as these four go
        rest: round(
          mean(
            (f) => f.durationMs - (f.wallMs.auth ?? 0) - (f.wallMs.cache ?? 0) - (f.wallMs.db ?? 0),
          ),
        ),
      },
      stagesMs,
      workMs,
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

/** Union of intervals, sorted and merged. */
function union(intervals: Array<readonly [number, number]>): Array<[number, number]> {
  const sorted = intervals.filter(([a, b]) => b > a).sort((x, y) => x[0] - y[0]);
  const merged: Array<[number, number]> = [];
  for (const [a, b] of sorted) {
    const last = merged.at(-1);
    if (last && a <= last[1]) last[1] = Math.max(last[1], b);
    else merged.push([a, b]);
  }
  return merged;
}

/**
 * Where a span runs itself: its interval, clipped to the request, minus the union of its
 * children's intervals.
 */
function selfIntervalsOf(
  span: FlatSpan,
  kids: readonly FlatSpan[],
  request: FlatSpan,
): Array<[number, number]> {
  const from = Math.max(span.start, request.start);
  const to = Math.min(span.end, request.end);
  if (to <= from) return [];
  const own: Array<[number, number]> = [];
  let at = from;
  for (const [a, b] of union(kids.map((k) => [Math.max(k.start, from), Math.min(k.end, to)]))) {
    if (a > at) own.push([at, a]);
    at = Math.max(at, b);
  }
  if (to > at) own.push([at, to]);
  return own;
}

/**
 * Wall time per stage along the request's timeline: a sweep over the self intervals;
 * a stretch covered by k stages at once gives each 1/k of it, so the stages add up to
 * at most the time they cover, however many spans overlap.
 */
export function timeline(
  intervals: ReadonlyArray<{ stage: string; from: number; to: number }>,
): Record<string, number> {
  const events: Array<{ t: number; stage: string; delta: 1 | -1 }> = [];
  for (const { stage, from, to } of intervals) {
    if (to <= from) continue;
    events.push({ t: from, stage, delta: 1 }, { t: to, stage, delta: -1 });
  }
  events.sort((a, b) => a.t - b.t);
  const active = new Map<string, number>();
  const wall: Record<string, number> = {};
  let last = events[0]?.t ?? 0;
  for (const event of events) {
    const span = event.t - last;
    if (span > 0 && active.size > 0) {
      for (const stage of active.keys()) wall[stage] = (wall[stage] ?? 0) + span / active.size;
    }
    last = event.t;
    const n = (active.get(event.stage) ?? 0) + event.delta;
    if (n > 0) active.set(event.stage, n);
    else active.delete(event.stage);
  }
  return wall;
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
