import { describe, expect, it } from 'vitest';
import { analyze, type RouteReport, timeline } from './analyze.ts';
import type { FlatSpan } from './otlp.ts';

// Hand-built traces: one request (server span, 0..100 ms) and children placed on its
// timeline, so every stage time below can be checked with a pencil.

let next = 0;
function span(
  parent: FlatSpan | null,
  start: number,
  end: number,
  stage?: string,
  extra: Record<string, string> = {},
): FlatSpan {
  next += 1;
  return {
    traceId: 't1',
    spanId: `s${next}`,
    parentSpanId: parent?.spanId ?? '',
    name: stage ?? 'request',
    kind: parent === null ? 2 : 1,
    start,
    end,
    attributes: {
      ...(parent === null ? { 'http.route': '/r' } : {}),
      ...(stage ? { 'dataflow.stage': stage } : {}),
      ...(stage === 'db' ? { 'db.query.summary': 'SELECT users' } : {}),
      ...extra,
    },
    service: 'api',
  };
}

function route(spans: FlatSpan[]): RouteReport {
  return analyze(spans).routes.find((r) => r.route === '/r')!;
}

/** Stages and rest add up to the duration, and none is negative. */
function expectConsistent(r: RouteReport, durationMs: number) {
  const { auth, cache, db, rest } = r.criticalPathMs;
  for (const v of [auth, cache, db, rest]) expect(v).toBeGreaterThanOrEqual(0);
  expect(auth + cache + db + rest).toBeCloseTo(durationMs, 6);
  const stages = Object.values(r.stagesMs).reduce((a, b) => a + b, 0);
  expect(stages).toBeCloseTo(durationMs, 6);
}

describe('trace analyzer: stage times on the timeline', () => {
  it('fully overlapping children count once; their work is summed', () => {
    const request = span(null, 0, 100);
    // 50 concurrent lookups of 10 ms each (Promise.all), from 20 to 30 ms
    const lookups = Array.from({ length: 50 }, () => span(request, 20, 30, 'db'));
    const r = route([request, ...lookups]);
    expect(r.criticalPathMs.db).toBeCloseTo(10, 6);
    expect(r.criticalPathMs.rest).toBeCloseTo(90, 6);
    expect(r.workMs.db).toBeCloseTo(500, 6);
    expectConsistent(r, 100);
  });

  it('partly overlapping children: the union of their intervals', () => {
    const request = span(null, 0, 100);
    const r = route([
      request,
      span(request, 10, 30, 'db'),
      span(request, 20, 40, 'db'),
      span(request, 35, 50, 'db'),
    ]);
    expect(r.criticalPathMs.db).toBeCloseTo(40, 6); // 10..50
    expect(r.workMs.db).toBeCloseTo(55, 6);
    expectConsistent(r, 100);
  });

  it('sequential children add up', () => {
    const request = span(null, 0, 100);
    const r = route([
      request,
      span(request, 0, 10, 'auth'),
      span(request, 10, 15, 'cache'),
      span(request, 15, 45, 'db'),
      span(request, 45, 60, 'db'),
    ]);
    expect(r.criticalPathMs).toEqual({ auth: 10, cache: 5, db: 45, rest: 40 });
    expectConsistent(r, 100);
  });

  it('nested: a parent stage gets only the time its children leave; different stages at once share it', () => {
    const request = span(null, 0, 100);
    const batch = span(request, 10, 60, 'batch');
    const r = route([
      request,
      batch,
      span(batch, 20, 50, 'db'), // the batch's own time: 10..20 and 50..60
      span(request, 40, 80, 'cache'), // 40..50 shared with db, 50..60 with batch
    ]);
    expect(r.stagesMs.batch).toBeCloseTo(10 + 5, 6);
    expect(r.criticalPathMs.db).toBeCloseTo(20 + 5, 6);
    expect(r.criticalPathMs.cache).toBeCloseTo(5 + 5 + 20, 6);
    expect(r.stagesMs.rest).toBeCloseTo(100 - 15 - 25 - 30, 6);
    // the four columns: a stage other than auth, cache and db is the server's own time
    expect(r.criticalPathMs.rest).toBeCloseTo(100 - 25 - 30, 6);
    expect(r.workMs.batch).toBeCloseTo(20, 6); // its own time, whoever else ran then
    expectConsistent(r, 100);
  });

  it('children outside the request are clipped; a span without a stage is the rest', () => {
    const request = span(null, 0, 100);
    const r = route([
      request,
      span(request, 90, 130, 'db'), // ends after the response
      span(request, 10, 20), // no stage: the server's own work
    ]);
    expect(r.criticalPathMs.db).toBeCloseTo(10, 6);
    expect(r.criticalPathMs.rest).toBeCloseTo(90, 6);
    expectConsistent(r, 100);
  });

  it('timeline() of nothing is nothing', () => {
    expect(timeline([])).toEqual({});
  });
});
