import { trace as otel, type Span } from '@opentelemetry/api';
import { hrTimeToMilliseconds } from '@opentelemetry/core';
import {
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
  TracerProvider,
} from '@opentelemetry/sdk-trace';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { TraceClockProcessor } from './telemetry/trace-clock.ts';
import {
  annotate,
  configureStageSpans,
  RequestTimings,
  type RequestTrace,
  traced,
  tracedSpan,
  tracedSync,
  under,
} from './trace.ts';

const exporter = new InMemorySpanExporter();
const provider = new TracerProvider({
  spanProcessors: [new TraceClockProcessor(), new SimpleSpanProcessor({ exporter })],
});

beforeAll(() => {
  otel.setGlobalTracerProvider(provider);
});
afterAll(async () => {
  configureStageSpans({ minDurationMs: 0 });
  otel.disable();
  await provider.shutdown();
});
beforeEach(() => {
  exporter.reset();
  configureStageSpans({ minDurationMs: MIN_MS });
});

/** Long enough that no short stage of these tests, cold code included, reaches it. */
const MIN_MS = 5;

/** Busy for about `ms` of monotonic time (timers are millisecond-coarse). */
function spin(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until);
}

/** A sampled request: its server span, and its timings for Server-Timing. */
function request(): { root: ReturnType<typeof startRoot>; trace: RequestTrace } {
  const root = startRoot();
  return { root, trace: { span: root, timings: new RequestTimings() } };
}
const startRoot = () => otel.getTracer('test').startSpan('GET /x');

const finished = (name: string): ReadableSpan[] =>
  exporter.getFinishedSpans().filter((s) => s.name === name);
const ms = (span: ReadableSpan, end: 'startTime' | 'endTime') => hrTimeToMilliseconds(span[end]);

describe('stage spans: made only when a stage is long enough, has a child, or fails', () => {
  it('a short in-memory stage gets no span, but still counts in the timings and on the request', async () => {
    const { root, trace } = request();
    const hit = await traced(trace, 'cache', 'cache.get', async (span) => {
      span?.setAttribute('dataflow.cache.result', 'hit');
      return 'hit';
    });
    annotate(trace, { 'dataflow.cache.result': hit });
    tracedSync(trace, 'serialize', 'serialize', () => JSON.stringify({ a: 1 }));
    root.end();

    expect(finished('cache.get')).toEqual([]);
    expect(finished('serialize')).toEqual([]);
    expect(finished('GET /x')[0]!.attributes['dataflow.cache.result']).toBe('hit');
    expect(trace.timings!.count).toEqual({ cache: 1, serialize: 1 });
  });

  it('a stage at least the minimum long gets its span, from where the stage began, with its attributes', async () => {
    const { root, trace } = request();
    const before = performance.now();
    await traced(
      trace,
      'auth',
      'auth.session',
      async (span) => {
        span?.setAttribute('later', 1);
        spin(MIN_MS + 1);
      },
      { early: 'yes' },
    );
    const after = performance.now();
    root.end();

    const [stage] = finished('auth.session');
    const [server] = finished('GET /x');
    expect(stage!.parentSpanContext?.spanId).toBe(server!.spanContext().spanId);
    expect(stage!.attributes).toMatchObject({ 'dataflow.stage': 'auth', early: 'yes', later: 1 });
    // the span covers the stage: it started before the spin, not when it was made at the end
    const duration = ms(stage!, 'endTime') - ms(stage!, 'startTime');
    expect(duration).toBeGreaterThanOrEqual(MIN_MS + 1 - 0.001);
    expect(duration).toBeLessThanOrEqual(after - before + 0.001);
    expect(ms(stage!, 'startTime')).toBeGreaterThanOrEqual(ms(server!, 'startTime'));
    expect(ms(stage!, 'endTime')).toBeLessThanOrEqual(ms(server!, 'endTime'));
  });

  it('a short stage with a query under it keeps its span, so the query has its parent', async () => {
    const { root, trace } = request();
    await traced(trace, 'auth', 'auth.membership', (span) =>
      tracedSpan(span, 'db', 'SELECT memberships', async () => 1),
    );
    root.end();

    const [stage] = finished('auth.membership');
    const [query] = finished('SELECT memberships');
    expect(stage).toBeDefined();
    expect(query!.parentSpanContext?.spanId).toBe(stage!.spanContext().spanId);
    expect(ms(query!, 'startTime')).toBeGreaterThanOrEqual(ms(stage!, 'startTime'));
    expect(ms(query!, 'endTime')).toBeLessThanOrEqual(ms(stage!, 'endTime'));
  });

  it('a stage nested in a short stage opens both when it needs a parent (a grandchild query)', async () => {
    const { root, trace } = request();
    await traced(trace, 'batch', 'batch.members_page', (page) =>
      traced(under(trace, page), 'db', 'batch.user', (load) =>
        tracedSpan(load, 'db', 'SELECT users', async () => 1),
      ),
    );
    root.end();
    const [page] = finished('batch.members_page');
    const [load] = finished('batch.user');
    const [query] = finished('SELECT users');
    expect(load!.parentSpanContext?.spanId).toBe(page!.spanContext().spanId);
    expect(query!.parentSpanContext?.spanId).toBe(load!.spanContext().spanId);
  });

  it('a short stage whose span is asked for after it ended still ends where it ended', async () => {
    const { root, trace } = request();
    let kept: Span | undefined;
    const before = performance.now();
    await traced(trace, 'cache', 'cache.get', async (span) => {
      kept = span;
    });
    const after = performance.now();
    spin(MIN_MS + 1);
    // a child made late (something kept the stage's span) opens it now
    expect(kept!.spanContext().traceId).toBe(root.spanContext().traceId);
    root.end();
    const [stage] = finished('cache.get');
    const duration = ms(stage!, 'endTime') - ms(stage!, 'startTime');
    expect(duration).toBeLessThanOrEqual(after - before + 0.001);
  });

  it("a stage's span ends at the end time it is given", async () => {
    const { root, trace } = request();
    let given = 0;
    let started = 0;
    await traced(trace, 'auth', 'auth.session', async (span) => {
      started = performance.now();
      spin(MIN_MS + 1);
      given = performance.now();
      spin(MIN_MS);
      span!.end(given);
    });
    root.end();
    const [stage] = finished('auth.session');
    const duration = ms(stage!, 'endTime') - ms(stage!, 'startTime');
    expect(duration).toBeGreaterThanOrEqual(MIN_MS + 1 - 0.001);
    // the stage's own clock began before `started`: at most that much longer than asked
    expect(duration).toBeLessThan(given - started + MIN_MS);
  });

  it('a short stage that fails keeps its span, with the error', async () => {
    const { root, trace } = request();
    await expect(
      traced(trace, 'auth', 'auth.session', async () => {
        throw new TypeError('bad token');
      }),
    ).rejects.toThrow('bad token');
    root.end();
    const [stage] = finished('auth.session');
    expect(stage!.status.code).toBe(2 /* ERROR */);
    expect(stage!.events.map((e) => e.name)).toEqual(['exception']);
  });

  it('with a minimum of 0 every stage has its span (the development default)', async () => {
    configureStageSpans({ minDurationMs: 0 });
    const { root, trace } = request();
    await traced(trace, 'cache', 'cache.get', async () => 'hit');
    tracedSync(trace, 'serialize', 'serialize', () => '{}');
    root.end();
    expect(finished('cache.get')).toHaveLength(1);
    expect(finished('serialize')).toHaveLength(1);
  });

  it('an unsampled request makes no span at all', async () => {
    const timings = new RequestTimings();
    await traced({ timings }, 'auth', 'auth.session', async (span) => {
      expect(span).toBeUndefined();
      spin(0.2);
    });
    expect(exporter.getFinishedSpans()).toEqual([]);
    expect(timings.count.auth).toBe(1);
  });
});
