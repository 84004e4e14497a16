import {
  type Attributes,
  type AttributeValue,
  type Exception,
  type HrTime,
  type Link,
  ROOT_CONTEXT,
  type Span,
  type SpanContext,
  type SpanKind,
  type SpanStatus,
  SpanStatusCode,
  type TimeInput,
  type Tracer,
  trace,
} from '@opentelemetry/api';

/**
 * The tracing vocabulary every layer uses (db, auth, levers, sync, realtime, api).
 * Imports only `@opentelemetry/api`, so it is runtime-neutral and costs almost nothing
 * when no SDK is registered; the SDK itself is wired in `telemetry/`, which only the
 * composition root imports.
 *
 * A stage is told its request explicitly (a `RequestTrace`: the parent span when the
 * request is sampled, the stage timings when Server-Timing is on), never through an async
 * context: on Node 20 an `AsyncLocalStorage` runs on async hooks that tax every promise of
 * the process once enabled, which cost about a sixth of the CPU of a cached read with traces
 * at 10% (docs/measurements.md). The HTTP adapter hands it down (the `trace` variable), the
 * database handle of a request carries it (`Database.forRequest`), and a stage passes
 * its own span on to the stages it runs.
 */

/** Where a request's time goes; the trace analyzer's critical-path columns. */
export type Stage =
  | 'auth'
  | 'cache'
  | 'coalesce'
  | 'batch'
  | 'db'
  | 'serialize'
  | 'sync'
  | 'realtime';

/** Span attribute naming the stage (`dataflow.stage`), read by the trace analyzer. */
export const STAGE_ATTRIBUTE = 'dataflow.stage';
export const TRACER_NAME = 'dataflow';

/** Per-request accumulator: milliseconds and operation counts by stage. */
export class RequestTimings {
  readonly ms: Partial<Record<Stage, number>> = {};
  readonly count: Partial<Record<Stage, number>> = {};
  add(stage: Stage, ms: number): void {
    this.ms[stage] = (this.ms[stage] ?? 0) + ms;
    this.count[stage] = (this.count[stage] ?? 0) + 1;
  }
}

/** What a stage reports to; both absent for most requests (unsampled, no Server-Timing). */
export interface RequestTrace {
  /** The parent of the stage's span: set only when the request is sampled. */
  readonly span?: Span | undefined;
  /** The request's stage timings, for Server-Timing. */
  readonly timings?: RequestTimings | undefined;
}

/** A request nobody traces: its stages open no span and time nothing. */
export const UNTRACED: RequestTrace = Object.freeze({});

function tracer(): Tracer {
  // looked up per use: the global provider can change (tests, shutdown)
  return trace.getTracer(TRACER_NAME);
}

/** `request` with `span` as the parent of what runs inside it (a stage's own span). */
export function under(request: RequestTrace, span: Span | undefined): RequestTrace {
  return span === undefined ? request : { span, timings: request.timings };
}

/**
 * Runs `fn` as one stage of `request`: a child span (when the request is sampled) and a
 * timing entry (with Server-Timing). `fn` receives the span, or undefined, to add
 * attributes it learns on the way and to parent the stages it runs (`under`).
 */
export function traced<T>(
  request: RequestTrace,
  stage: Stage,
  name: string,
  fn: (span: Span | undefined) => Promise<T>,
  attributes?: Attributes,
): Promise<T> {
  return run(begin(request.span, request.timings, stage, name, attributes), fn);
}

/**
 * `traced` without the timing entry, for the DB layer: its caller records the time
 * through the request's own handle (`Database.forRequest`), so it is counted once. A
 * query always has its span, however short: the trace analyzer counts round trips by them.
 */
export function tracedSpan<T>(
  parent: Span | undefined,
  stage: Stage,
  name: string,
  fn: (span: Span | undefined) => Promise<T>,
  attributes?: Attributes,
): Promise<T> {
  if (parent === undefined) return fn(undefined);
  const span = tracer().startSpan(
    name,
    { attributes: { [STAGE_ATTRIBUTE]: stage, ...attributes } },
    trace.setSpan(ROOT_CONTEXT, parent),
  );
  return run({ span, end: () => span.end() }, fn);
}

async function run<T>(
  stage: { span: Span | undefined; end(): void } | undefined,
  fn: (span: Span | undefined) => Promise<T>,
): Promise<T> {
  if (!stage) return fn(undefined);
  try {
    return await fn(stage.span);
  } catch (error) {
    failSpan(stage.span, error);
    throw error;
  } finally {
    stage.end();
  }
}

/** `traced` for synchronous work (serialization). */
export function tracedSync<T>(
  request: RequestTrace,
  stage: Stage,
  name: string,
  fn: () => T,
  attributes?: Attributes,
): T {
  const started = begin(request.span, request.timings, stage, name, attributes);
  if (!started) return fn();
  try {
    return fn();
  } catch (error) {
    failSpan(started.span, error);
    throw error;
  } finally {
    started.end();
  }
}

/** Starts a stage: undefined when neither a sampled parent nor request timings want it. */
function begin(
  parent: Span | undefined,
  timings: RequestTimings | undefined,
  stage: Stage,
  name: string,
  attributes: Attributes | undefined,
) {
  if (timings === undefined && parent === undefined) return undefined;
  const started = performance.now();
  const span = parent ? new StageSpan(parent, name, stage, attributes, started) : undefined;
  return {
    span,
    end() {
      span?.end();
      timings?.add(stage, performance.now() - started);
    },
  };
}

/**
 * Stages shorter than this (ms) that opened no child span and failed nothing get no span
 * of their own (`configureStageSpans`). 0: every stage has one.
 */
let minStageSpanMs = 0;

/**
 * How short a stage may be and still go unrecorded as a span of its own: a span costs
 * tens of microseconds of CPU in the SDK (making, batching, serializing, exporting), more
 * than an in-memory stage (a token or membership cache hit, a memory cache lookup) takes.
 * Such a stage still counts in Server-Timing and in its request's span attributes
 * (`annotate`). Set by the composition root with the rest of tracing.
 */
export function configureStageSpans(options: { minDurationMs: number }): void {
  minStageSpanMs = Math.max(0, options.minDurationMs);
}

/**
 * A stage's span, made only when something needs it: a child stage or query (which asks
 * for its parent's `spanContext`), an error, an event, or the stage's own length (at
 * least `minStageSpanMs`) when it ends. Until then attributes wait here. Made late, it
 * starts where the stage started: `startTime` is that stage's `performance.now()`.
 */
class StageSpan implements Span {
  #span: Span | undefined;
  /** When the stage ended, once it has. */
  #end: TimeInput | undefined;
  readonly #attributes: Attributes;

  constructor(
    private readonly parent: Span,
    private name: string,
    stage: Stage,
    attributes: Attributes | undefined,
    private readonly startedAt: number,
  ) {
    this.#attributes = { [STAGE_ATTRIBUTE]: stage, ...attributes };
  }

  #open(): Span {
    if (this.#span === undefined) {
      this.#span = tracer().startSpan(
        this.name,
        { attributes: this.#attributes, startTime: this.startedAt },
        trace.setSpan(ROOT_CONTEXT, this.parent),
      );
      // asked for after the stage ended (something kept its span): made late, it still
      // ends where the stage ended
      if (this.#end !== undefined) this.#span.end(endOn(this.#span, this.startedAt, this.#end));
    }
    return this.#span;
  }

  spanContext(): SpanContext {
    return this.#open().spanContext();
  }
  setAttribute(key: string, value: AttributeValue): this {
    if (this.#span) this.#span.setAttribute(key, value);
    else this.#attributes[key] = value;
    return this;
  }
  setAttributes(attributes: Attributes): this {
    if (this.#span) this.#span.setAttributes(attributes);
    else Object.assign(this.#attributes, attributes);
    return this;
  }
  addEvent(name: string, attributes?: Attributes | TimeInput, startTime?: TimeInput): this {
    this.#open().addEvent(name, attributes, startTime);
    return this;
  }
  addLink(link: Link): this {
    this.#open().addLink(link);
    return this;
  }
  addLinks(links: Link[]): this {
    this.#open().addLinks(links);
    return this;
  }
  setStatus(status: SpanStatus): this {
    this.#open().setStatus(status);
    return this;
  }
  updateName(name: string): this {
    if (this.#span) this.#span.updateName(name);
    else this.name = name;
    return this;
  }
  recordException(exception: Exception, time?: TimeInput): void {
    this.#open().recordException(exception, time);
  }
  isRecording(): boolean {
    return this.#end === undefined;
  }
  end(endTime?: TimeInput): void {
    if (this.#end !== undefined) return;
    const now = performance.now();
    this.#end = endTime ?? now;
    if (this.#span !== undefined) {
      this.#span.end(
        endTime === undefined ? undefined : endOn(this.#span, this.startedAt, endTime),
      );
    } else if ((typeof endTime === 'number' ? endTime : now) - this.startedAt >= minStageSpanMs) {
      this.#open();
    }
  }
}

/**
 * `end`, a `performance.now()` time, on `span`'s own clock: its start plus the monotonic
 * time since the stage began, as the SDK computes an end it is not given. (Given a
 * number, the SDK would add its wall-clock offset instead, while the trace's clock
 * (`telemetry/trace-clock.ts`) has moved the span's start onto the trace's basis: the
 * two disagree by up to a millisecond.) Other times pass as they are.
 */
function endOn(span: Span, startedAt: number, end: TimeInput): TimeInput {
  const start = (span as { startTime?: unknown }).startTime;
  if (typeof end !== 'number' || end > performance.now() || !isHrTime(start)) return end;
  const nanos = start[1] + Math.round(Math.max(0, end - startedAt) * 1e6);
  return [start[0] + Math.floor(nanos / 1e9), nanos % 1e9];
}

const isHrTime = (value: unknown): value is HrTime =>
  Array.isArray(value) && typeof value[0] === 'number' && typeof value[1] === 'number';

/** Sets attributes on the request's span (no-op when not sampled). */
export function annotate(request: RequestTrace, attributes: Attributes): void {
  request.span?.setAttributes(attributes);
}

/**
 * The W3C `traceparent` of `span` when there is one (a sampled request or stage), else the
 * caller's (already validated) header: what a change-log row carries to the WebSocket message.
 */
export function traceparentFor(span: Span | undefined, fallback: string | null): string | null {
  if (!span) return fallback;
  const { traceId, spanId } = span.spanContext();
  return `00-${traceId}-${spanId}-01`;
}

const TRACEPARENT = /^00-([\da-f]{32})-([\da-f]{16})-([\da-f]{2})$/;
const ANY_VERSION_TRACEPARENT = /^[\da-f]{2}-[\da-f]{32}-[\da-f]{16}-[\da-f]{2}$/;

/** A well-formed W3C `traceparent` header, or null (a malformed one is dropped, not stored). */
export function traceparentOf(header: string | undefined): string | null {
  if (header === undefined) return null;
  const value = header.trim().toLowerCase();
  return ANY_VERSION_TRACEPARENT.test(value) && !/^[\da-f]{2}-0{32}-/.test(value) ? value : null;
}

/**
 * A span whose parent is the change that caused it (a `traceparent` carried in the
 * change log and the WebSocket message), so webhook -> broadcast -> client receipt is
 * one trace. Undefined when the change was not sampled or no SDK is registered.
 */
export function startFromTraceparent(
  name: string,
  traceparent: string | null | undefined,
  kind: SpanKind,
  attributes?: Attributes,
): Span | undefined {
  const parent = remoteParent(traceparent);
  if (!parent) return undefined;
  const span = tracer().startSpan(name, { kind, attributes }, trace.setSpan(ROOT_CONTEXT, parent));
  return span.isRecording() ? span : undefined;
}

/**
 * A sampled `traceparent` (a change-log row's) as a parent for `traced` stages, so work a
 * change causes later joins its trace; undefined when not sampled.
 */
export function remoteParent(traceparent: string | null | undefined): Span | undefined {
  const match = traceparent ? TRACEPARENT.exec(traceparent) : null;
  if (!match || (Number.parseInt(match[3]!, 16) & 1) === 0) return undefined;
  return trace.wrapSpanContext({
    traceId: match[1]!,
    spanId: match[2]!,
    traceFlags: 1,
    isRemote: true,
  });
}

function failSpan(span: Span | undefined, error: unknown): void {
  if (!span) return;
  span.recordException(error instanceof Error ? error : String(error));
  span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error)?.name });
}
