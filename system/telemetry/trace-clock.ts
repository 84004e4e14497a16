import { type Context, type HrTime, trace } from '@opentelemetry/api';
import { addHrTimes, millisToHrTime } from '@opentelemetry/core';
import type { ReadableSpan, Span, SpanProcessor } from '@opentelemetry/sdk-trace';

/**
 * One clock per trace for the spans a process makes. The SDK starts every span at
 * `Date.now()`, whole milliseconds, and derives its end and its events from
 * `performance.now()`: each span's start is off by up to a millisecond, each by its own
 * amount, so a child can seem to start before its parent or after a sibling that
 * followed it (opentelemetry-js#5019). The stages here take microseconds, and the trace
 * analyzer walks a request's timeline.
 *
 * This processor, first in line, moves the start of a span with a local parent to the
 * parent's start plus the monotonic time elapsed since: its trace's spans then share one
 * basis, and their order and gaps are the real ones. A span without a local parent (a
 * request's server span, a span under a remote `traceparent`) keeps the SDK's wall-clock
 * start and becomes the basis of its descendants. The SDK adds the monotonic duration
 * to `startTime` for the end and the events, so they follow.
 */
export class TraceClockProcessor implements SpanProcessor {
  /**
   * Per span of this process still open, by span id: its trace's wall-clock start and
   * the monotonic time of it. By id, not by object: work a change causes later in the
   * request parents itself on the change log's `traceparent`, a wrapped span context.
   */
  readonly #basis = new Map<string, { start: HrTime; at: number }>();

  onStart(span: Span, parentContext: Context): void {
    const at = monotonicStart(span);
    const parentId = trace.getSpanContext(parentContext)?.spanId;
    const basis = parentId === undefined ? undefined : this.#basis.get(parentId);
    if (basis === undefined) {
      this.#remember(span, { start: span.startTime, at });
      return;
    }
    (span as { startTime: HrTime }).startTime = addHrTimes(
      basis.start,
      millisToHrTime(Math.max(0, at - basis.at)),
    );
    this.#remember(span, basis);
  }

  /** A child that starts after its parent ended takes a basis of its own. */
  onEnd(span: ReadableSpan): void {
    this.#basis.delete(span.spanContext().spanId);
  }

  forceFlush(): Promise<void> {
    return Promise.resolve();
  }

  shutdown(): Promise<void> {
    this.#basis.clear();
    return Promise.resolve();
  }

  #remember(span: Span, basis: { start: HrTime; at: number }): void {
    // bounded: a span some fault never ends must not keep its entry for ever
    if (this.#basis.size >= MAX_OPEN_SPANS) {
      this.#basis.delete(this.#basis.keys().next().value!);
    }
    this.#basis.set(span.spanContext().spanId, basis);
  }
}

/** Open spans remembered at most (the oldest go first). */
const MAX_OPEN_SPANS = 10_000;

/**
 * The `performance.now()` the SDK took with the span's `Date.now()` (its durations
 * count from it); the current one if a later SDK no longer keeps it there.
 */
function monotonicStart(span: Span): number {
  const taken = (span as unknown as { _performanceStartTime?: unknown })._performanceStartTime;
  return typeof taken === 'number' ? taken : performance.now();
}
