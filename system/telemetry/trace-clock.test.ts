import { type HrTime, ROOT_CONTEXT, trace } from '@opentelemetry/api';
import { hrTimeToMilliseconds } from '@opentelemetry/core';
import {
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
  TracerProvider,
} from '@opentelemetry/sdk-trace';
import { describe, expect, it } from 'vitest';
import { TraceClockProcessor } from './trace-clock.ts';

function setup() {
  const exporter = new InMemorySpanExporter();
  const provider = new TracerProvider({
    spanProcessors: [new TraceClockProcessor(), new SimpleSpanProcessor({ exporter })],
  });
  const tracer = provider.getTracer('test');
  // warm: a first span takes about a millisecond to make, wider than the bounds below
  for (let i = 0; i < 50; i++) {
    const root = tracer.startSpan('warm-up');
    tracer.startSpan('warm-up', {}, trace.setSpan(ROOT_CONTEXT, root)).end();
    root.end();
  }
  exporter.reset();
  const byName = (name: string) =>
    exporter.getFinishedSpans().find((s: ReadableSpan) => s.name === name)!;
  return { tracer, byName };
}

/** Busy for about `ms` of monotonic time (no timer: they are millisecond-coarse). */
function spin(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until);
}

const ms = (time: HrTime) => hrTimeToMilliseconds(time);

/** `fn` between two monotonic readings: when it ran, as closely as this side can tell. */
function timed<T>(fn: () => T): { value: T; before: number; after: number } {
  const before = performance.now();
  const value = fn();
  return { value, before, after: performance.now() };
}

/** `later`'s start after `first`'s on the trace, within what the monotonic readings allow. */
function expectOffset(
  offset: number,
  first: { before: number; after: number },
  later: { before: number; after: number },
): void {
  expect(offset).toBeGreaterThanOrEqual(later.before - first.after - 0.001);
  expect(offset).toBeLessThanOrEqual(later.after - first.before + 0.001);
}

describe('TraceClockProcessor: one clock per trace', () => {
  it('puts a child where it started, to the microsecond, inside its parent', () => {
    const { tracer, byName } = setup();
    const root = timed(() => tracer.startSpan('root'));
    spin(0.3);
    const started = timed(() =>
      tracer.startSpan('child', {}, trace.setSpan(ROOT_CONTEXT, root.value)),
    );
    const child = started.value;
    spin(0.2);
    child.end();
    tracer.startSpan('sibling', {}, trace.setSpan(ROOT_CONTEXT, root.value)).end();
    root.value.end();

    // the SDK alone starts both at whole milliseconds: 0 or 1 here, never inside these bounds
    expectOffset(ms(byName('child').startTime) - ms(byName('root').startTime), root, started);
    expect(ms(byName('child').endTime)).toBeLessThanOrEqual(ms(byName('root').endTime));
    // a span that started after another ended comes after it on the timeline
    expect(ms(byName('sibling').startTime)).toBeGreaterThanOrEqual(ms(byName('child').endTime));
  });

  it('keeps grandchildren and events on the same basis', () => {
    const { tracer, byName } = setup();
    const root = timed(() => tracer.startSpan('root'));
    const child = tracer.startSpan('child', {}, trace.setSpan(ROOT_CONTEXT, root.value));
    spin(0.3);
    const started = timed(() => {
      const grandchild = tracer.startSpan('grandchild', {}, trace.setSpan(ROOT_CONTEXT, child));
      grandchild.addEvent('mark');
      return grandchild;
    });
    started.value.end();
    child.end();
    root.value.end();

    const grand = byName('grandchild');
    expectOffset(ms(grand.startTime) - ms(byName('root').startTime), root, started);
    const event = ms(grand.events[0]!.time) - ms(grand.startTime);
    expect(event).toBeGreaterThanOrEqual(0);
    expect(event).toBeLessThanOrEqual(started.after - started.before + 0.001);
  });

  it('keeps a span parented on an ended stage (the change log traceparent) on the clock', () => {
    const { tracer, byName } = setup();
    const root = timed(() => tracer.startSpan('root'));
    const apply = tracer.startSpan('apply', {}, trace.setSpan(ROOT_CONTEXT, root.value));
    apply.end();
    spin(0.3);
    // what remoteParent() makes of the change-log row's traceparent, after the stage ended
    const carried = trace.wrapSpanContext({ ...apply.spanContext(), isRemote: true });
    const started = timed(() =>
      tracer.startSpan('invalidate', {}, trace.setSpan(ROOT_CONTEXT, carried)).end(),
    );
    root.value.end();
    expectOffset(ms(byName('invalidate').startTime) - ms(byName('root').startTime), root, started);
  });

  it('places a span made late, given its start as a performance.now() time, where it started', () => {
    const { tracer, byName } = setup();
    const root = timed(() => tracer.startSpan('root'));
    const stageStart = timed(() => performance.now());
    spin(0.3);
    // a stage's span made only now (StageSpan in trace.ts), dated back to the stage's start
    const late = tracer.startSpan(
      'stage',
      { startTime: stageStart.value },
      trace.setSpan(ROOT_CONTEXT, root.value),
    );
    spin(0.2);
    const ended = timed(() => late.end());
    root.value.end();

    const stage = byName('stage');
    expectOffset(ms(stage.startTime) - ms(byName('root').startTime), root, stageStart);
    // ended on the monotonic clock, not at a whole millisecond of Date.now()
    const duration = ms(stage.endTime) - ms(stage.startTime);
    expect(duration).toBeGreaterThanOrEqual(ended.before - stageStart.value - 0.001);
    expect(duration).toBeLessThanOrEqual(ended.after - stageStart.value + 0.001);
  });

  it('leaves a span under a remote parent on its own wall-clock start', () => {
    const { tracer, byName } = setup();
    const remote = trace.wrapSpanContext({
      traceId: 'ab'.repeat(16),
      spanId: 'cd'.repeat(8),
      traceFlags: 1,
      isRemote: true,
    });
    const wall = Date.now();
    const span = tracer.startSpan('server', {}, trace.setSpan(ROOT_CONTEXT, remote));
    span.end();
    const start = ms(byName('server').startTime);
    expect(start).toBeGreaterThanOrEqual(wall);
    expect(start).toBeLessThanOrEqual(Date.now());
  });
});
