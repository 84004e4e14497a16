import {
  propagation,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  type SpanOptions,
  SpanStatusCode,
  type TextMapGetter,
  type Tracer,
} from '@opentelemetry/api';
import type { Context, MiddlewareHandler } from 'hono';
import { routePath } from 'hono/route';
import { requestHeader } from '../request-headers.ts';
import { RequestTimings, type RequestTrace, type Stage, UNTRACED } from '../trace.ts';

/** What one finished request tells the metrics (RED and queries per request). */
export interface RequestRecord {
  method: string;
  route: string;
  status: number;
  durationMs: number;
  dbQueries: number;
}

/**
 * Starts the server span of a request that has no remote parent, or returns undefined
 * when the sampler drops it (`rootSampling` in sampler.ts).
 */
export type RootSpanStarter = (
  tracer: Tracer,
  name: string,
  options: SpanOptions,
) => Span | undefined;

/**
 * The request middleware, on every runtime: the server span (its parent from the W3C
 * `traceparent`), the per-request stage timings every layer adds to, Server-Timing, and
 * the hooks the metrics record from. Imports only `@opentelemetry/api` and Hono.
 */
export function serverSpans(options: {
  /** Undefined: no tracer provider, timings and metrics only. */
  tracer: Tracer | undefined;
  /**
   * Without it every request gets a span from `tracer` (a non-recording one when not
   * sampled); with it a request without a `traceparent` that is not sampled gets no span
   * and no tracing context at all.
   */
  startRootSpan?: RootSpanStarter;
  serverTiming: boolean;
  /**
   * Paths that never get a span, whatever the sampler or a `traceparent` says: the
   * telemetry's own plumbing (`/metrics`), which a scraper calls every few seconds. Their
   * requests still count in the metrics.
   */
  untracedPaths?: readonly string[];
  onActive?: (delta: 1 | -1) => void;
  onRequest?: (request: RequestRecord) => void;
}): MiddlewareHandler<{
  Variables: { timings: RequestTimings | undefined; trace: RequestTrace | undefined };
}> {
  const { tracer, startRootSpan } = options;
  const untraced = new Set(options.untracedPaths);
  return async function telemetry(c, next) {
    const started = performance.now();
    options.onActive?.(1);
    let span: Span | undefined;
    if (tracer && (untraced.size === 0 || !untraced.has(c.req.path))) {
      const spanOptions = serverSpanOptions(c.req.method);
      if (startRootSpan && requestHeader(c, 'traceparent') === undefined) {
        span = startRootSpan(tracer, c.req.method, spanOptions);
      } else {
        const parent = propagation.extract(ROOT_CONTEXT, c, headerGetter);
        span = tracer.startSpan(c.req.method, spanOptions, parent);
      }
    }
    const timings = new RequestTimings();
    // for the request's database handle (`Database.forRequest`), which counts its queries
    c.set('timings', timings);
    // handed to every stage (no async context): the span only when sampled (an unsampled
    // one with a remote parent has nothing to give children), the timings for Server-Timing
    const stageParent = span?.isRecording() ? span : undefined;
    const stageTimings = options.serverTiming ? timings : undefined;
    c.set(
      'trace',
      stageParent || stageTimings ? { span: stageParent, timings: stageTimings } : UNTRACED,
    );
    try {
      await next();
    } finally {
      options.onActive?.(-1);
      const durationMs = performance.now() - started;
      const route = routePath(c, -1) || 'unmatched';
      const status = c.res.status;
      options.onRequest?.({
        method: c.req.method,
        route,
        status,
        durationMs,
        dbQueries: timings.count.db ?? 0,
      });
      if (span) {
        span.updateName(`${c.req.method} ${route}`);
        span.setAttributes({
          'http.route': route,
          'http.response.status_code': status,
          'dataflow.db.queries': timings.count.db ?? 0,
        });
        if (status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
        span.end();
      }
      if (options.serverTiming) setServerTiming(c.res.headers, timings, durationMs);
    }
  };
}

const spanOptionsByMethod = new Map<string, SpanOptions>();

/** The server span's start options, made once per method (bounded: any token is a method). */
function serverSpanOptions(method: string): SpanOptions {
  let options = spanOptionsByMethod.get(method);
  if (!options) {
    options = {
      kind: SpanKind.SERVER,
      attributes: { 'http.request.method': method, 'url.scheme': 'http' },
    };
    if (spanOptionsByMethod.size < 16) spanOptionsByMethod.set(method, options);
  }
  return options;
}

const headerGetter: TextMapGetter<Context> = {
  keys: (c) => [...c.req.raw.headers.keys()],
  get: (c, key) => requestHeader(c, key),
};

const TIMING_ORDER: readonly Stage[] = [
  'auth',
  'coalesce',
  'cache',
  'batch',
  'db',
  'serialize',
  'sync',
  'realtime',
];

/**
 * `Server-Timing: auth;dur=0.41, db;dur=3.20;desc="52", …, total;dur=5.02`. Stages nest
 * (auth includes its membership query), so the entries are a breakdown, not a sum.
 */
function setServerTiming(headers: Headers, timings: RequestTimings, totalMs: number): void {
  const parts: string[] = [];
  for (const stage of TIMING_ORDER) {
    const ms = timings.ms[stage];
    if (ms === undefined) continue;
    parts.push(`${stage};dur=${ms.toFixed(2)};desc="${timings.count[stage] ?? 0}"`);
  }
  parts.push(`total;dur=${totalMs.toFixed(2)}`);
  try {
    headers.set('Server-Timing', parts.join(', '));
  } catch {
    // an immutable response (a re-served one): leave it without the header
  }
}
