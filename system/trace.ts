import {
  type Attributes,
  type Context,
  context,
  createContextKey,
  ROOT_CONTEXT,
  type Span,
  type SpanKind,
  SpanStatusCode,
  type Tracer,
  trace,
} from '@opentelemetry/api';

/**
 * The tracing vocabulary every layer uses (db, auth, levers, sync, realtime, api).
 * Imports only `@opentelemetry/api`, so it is runtime-neutral and costs almost nothing
 * when no SDK is registered; the SDK itself is wired in `telemetry/`, which only the
 * composition root imports: a stage opens a
 * span only under a recording parent (the server span of a sampled request), and adds
 * its time to the request's timings (Server-Timing, queries per request) only when the
 * telemetry middleware put them in the context.
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

export const REQUEST_TIMINGS = createContextKey('dataflow.request-timings');

function tracer(): Tracer {
  // looked up per use: the global provider can change (tests, shutdown)
  return trace.getTracer(TRACER_NAME);
}

/** The active span, when it records (a sampled request); undefined otherwise. */
export function recordingSpan(ctx: Context = context.active()): Span | undefined {
  const span = trace.getSpan(ctx);
  return span?.isRecording() ? span : undefined;
}

/**
 * Runs `fn` as one stage of the current request: a child span (when the request is
 * sampled) and a timing entry (when telemetry is on). `fn` receives the span, or
 * undefined, to add attributes it learns on the way.
 */
export function traced<T>(
  stage: Stage,
  name: string,
  fn: (span: Span | undefined) => Promise<T>,
  attributes?: Attributes,
): Promise<T> {
  return run(begin(stage, name, attributes, true), fn);
}

/**
 * `traced` without the timing entry, for a stage whose time its caller records through
 * the request's own handle (the DB layer: `Database.forRequest`), so it is counted once
 * and also where no context carries the request's timings.
 */
export function tracedSpan<T>(
  stage: Stage,
  name: string,
  fn: (span: Span | undefined) => Promise<T>,
  attributes?: Attributes,
): Promise<T> {
  return run(begin(stage, name, attributes, false), fn);
}

async function run<T>(
  stage: ReturnType<typeof begin>,
  fn: (span: Span | undefined) => Promise<T>,
): Promise<T> {
  if (!stage) return fn(undefined);
  try {
    const { span } = stage;
    return await (span
      ? context.with(trace.setSpan(stage.active, span), fn, undefined, span)
      : fn(span));
  } catch (error) {
    failSpan(stage.span, error);
    throw error;
  } finally {
    stage.end();
  }
}

/** `traced` for synchronous work (serialization). */
export function tracedSync<T>(stage: Stage, name: string, fn: () => T, attributes?: Attributes): T {
  const started = begin(stage, name, attributes, true);
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

/** Starts a stage: undefined when neither a sampled span nor request timings want it. */
function begin(stage: Stage, name: string, attributes: Attributes | undefined, time: boolean) {
  const active = context.active();
  const timings = time
    ? (active.getValue(REQUEST_TIMINGS) as RequestTimings | undefined)
    : undefined;
  const parent = recordingSpan(active);
  if (timings === undefined && parent === undefined) return undefined;
  const started = performance.now();
  const span = parent
    ? tracer().startSpan(name, { attributes: { [STAGE_ATTRIBUTE]: stage, ...attributes } }, active)
    : undefined;
  return {
    active,
    span,
    end() {
      span?.end();
      timings?.add(stage, performance.now() - started);
    },
  };
}

/** Sets an attribute on the current request's span (no-op when not sampled). */
export function annotate(attributes: Attributes): void {
  recordingSpan()?.setAttributes(attributes);
}

/**
 * The W3C `traceparent` of the current span when it is sampled, else the caller's
 * (already validated) header: what a change-log row carries to the WebSocket message.
 */
export function currentTraceparent(fallback: string | null): string | null {
  const span = recordingSpan();
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
  const match = traceparent ? TRACEPARENT.exec(traceparent) : null;
  if (!match || (Number.parseInt(match[3]!, 16) & 1) === 0) return undefined;
  const parent = trace.setSpanContext(ROOT_CONTEXT, {
    traceId: match[1]!,
    spanId: match[2]!,
    traceFlags: 1,
    isRemote: true,
  });
  const span = tracer().startSpan(name, { kind, attributes }, parent);
  return span.isRecording() ? span : undefined;
}

function failSpan(span: Span | undefined, error: unknown): void {
  if (!span) return;
  span.recordException(error instanceof Error ? error : String(error));
  span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error)?.name });
}
