import type { HrTime } from '@opentelemetry/api';
import { addHrTimes, hrTimeToMilliseconds, millisToHrTime } from '@opentelemetry/core';
import type { ReadableSpan, Span, SpanProcessor } from '@opentelemetry/sdk-trace';

/**
 * One clock per trace for the spans a process makes. The SDK starts every span at
 * `Date.now()`, whole milliseconds, and derives its end and its events from
 * `performance.now()`: each span's start is off by up to a millisecond, each by its own
 * amount, so a child can seem to start before its parent or after a sibling that
 * followed it (opentelemetry-js#5019). The stages here take microseconds, and the trace
 * analyzer walks a request's timeline.
 *
 * This processor, first in line, keeps the first span of a trace in this process (a
 * request's server span, under a caller's `traceparent` or not) on the SDK's wall-clock
 * start, and starts every later span of that trace, while that first span is open, at
 * its start plus the monotonic time elapsed since: the trace's spans then share one
 * basis, and their order and gaps are the real ones. That includes work parented on a
 * stage that has already ended (a change's cache invalidation, on the change log's
 * `traceparent`). The SDK adds the monotonic duration to `startTime` for the end and the
 * events, so they follow.
 */
export class TraceClockProcessor implements SpanProcessor {
  /** Per trace with an open first span here: that span, its start, its monotonic time. */
  readonly #basis = new Map<string, { spanId: string; start: HrTime; at: number }>();

  onStart(span: Span): void {
    const at = monotonicStart(span);
    const { traceId, spanId } = span.spanContext();
    const basis = this.#basis.get(traceId);
    if (basis === undefined) {
      // bounded: a first span some fault never ends must not keep its entry for ever
      if (this.#basis.size >= MAX_OPEN_TRACES) {
        this.#basis.delete(this.#basis.keys().next().value!);
      }
      this.#basis.set(traceId, { spanId, start: span.startTime, at });
      return;
    }
    (span as { startTime: HrTime }).startTime = addHrTimes(
      basis.start,
      millisToHrTime(Math.max(0, at - basis.at)),
    );
  }

  /** A span of the trace that starts after its first span here ended takes a new basis. */
  onEnd(span: ReadableSpan): void {
    const { traceId, spanId } = span.spanContext();
    if (this.#basis.get(traceId)?.spanId === spanId) this.#basis.delete(traceId);
  }

  forceFlush(): Promise<void> {
    return Promise.resolve();
  }

  shutdown(): Promise<void> {
    this.#basis.clear();
    return Promise.resolve();
  }
}

/** Traces remembered at most (the oldest go first). */
const MAX_OPEN_TRACES = 10_000;

/** The SDK's own fields this processor reads (and, for a span started in the past, sets). */
interface SdkClock {
  _performanceStartTime?: unknown;
  _performanceOffset?: unknown;
  _startTimeProvided?: unknown;
}

/**
 * The monotonic time the span started at: the `performance.now()` the SDK took with its
 * `Date.now()` (its durations count from it), or the current one if a later SDK no longer
 * keeps it there. A span given its `startTime` (a stage's span made after the stage began,
 * `StageSpan` in trace.ts) started at that time: the SDK turned it into wall-clock time
 * with its offset, which gives it back. Such a span is then set to count its duration
 * from there, as any other does; left as is, the SDK would end it at `Date.now()`, whole
 * milliseconds.
 */
function monotonicStart(span: Span): number {
  const clock = span as unknown as SdkClock;
  const taken = clock._performanceStartTime;
  if (typeof taken !== 'number') return performance.now();
  const offset = clock._performanceOffset;
  if (clock._startTimeProvided !== true || typeof offset !== 'number') return taken;
  const startedAt = hrTimeToMilliseconds(span.startTime) - offset - performance.timeOrigin;
  clock._performanceStartTime = startedAt;
  clock._startTimeProvided = false;
  return startedAt;
}
