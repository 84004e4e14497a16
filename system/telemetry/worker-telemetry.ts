import { propagation, trace } from '@opentelemetry/api';
import { ExportResultCode, W3CTraceContextPropagator } from '@opentelemetry/core';
import {
  JsonMetricsSerializer,
  JsonTraceSerializer,
  ProtobufMetricsSerializer,
  ProtobufTraceSerializer,
} from '@opentelemetry/otlp-transformer';
import { type Resource, resourceFromAttributes } from '@opentelemetry/resources';
import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import {
  type ReadableSpan,
  SimpleSpanProcessor,
  type SpanExporter,
  TracerProvider,
} from '@opentelemetry/sdk-trace';
import type { MiddlewareHandler } from 'hono';
import { configureStageSpans, TRACER_NAME } from '../trace.ts';
import { createBoundMetrics } from './bound-metrics.ts';
import { serverSpans } from './http.ts';
import { createInstruments, type Instruments, METER_NAME } from './metrics.ts';
import { createSampler, rootSampling } from './sampler.ts';
import type { TelemetryConfig } from './telemetry.ts';
import { TraceClockProcessor } from './trace-clock.ts';
import type { OtlpProtocol } from './tracing.ts';

/**
 * Telemetry on Workers: the same spans as on Node (the server span of http.ts, every
 * stage's `traced`) and the same request metrics, both pushed as OTLP over `fetch`. A
 * Worker has no life between requests for a batch processor's or a metric reader's
 * timer, and workerd forbids finishing one request's I/O in another, so each request
 * ships what it can with `ctx.waitUntil(flush())`, after its response: the spans that
 * have ended, and the metrics once an export interval has passed since the last push.
 * No scrape endpoint: an isolate is not a stable target.
 */
export interface WorkerTelemetry {
  middleware: MiddlewareHandler;
  /** The request, database, cache and webhook hooks, when metrics are pushed. */
  instruments: Instruments | undefined;
  /** Posts the ended spans, and the metrics when due; for `ctx.waitUntil`. Never rejects. */
  flush(): Promise<void>;
}

/** Spans kept at most between two flushes; past it they are dropped and counted. */
const MAX_PENDING_SPANS = 2048;

export function createWorkerTelemetry(
  config: TelemetryConfig,
  onError: (error: unknown) => void,
): WorkerTelemetry | undefined {
  const tracing = config.tracing?.exporters.includes('otlp') ? config.tracing : undefined;
  const push = config.otlpMetrics;
  if (!tracing && !push) return undefined;
  const resource = resourceFromAttributes({
    'service.name': config.serviceName,
    // each isolate keeps cumulative series of its own: the instance tells them apart
    'service.instance.id': crypto.randomUUID(),
  });
  const spans = tracing && workerTracing(tracing, resource, config, onError);
  const metrics = push && workerMetrics(push, resource, onError);
  return {
    middleware: serverSpans({
      tracer: spans?.tracer,
      startRootSpan: spans?.startRootSpan,
      serverTiming: config.serverTiming,
      onActive: metrics?.instruments.onActive,
      onRequest: metrics?.instruments.onRequest,
    }),
    instruments: metrics?.instruments,
    flush: async () => {
      await Promise.all([spans?.flush(), metrics?.flush()]);
    },
  };
}

function workerTracing(
  tracing: NonNullable<TelemetryConfig['tracing']>,
  resource: Resource,
  config: TelemetryConfig,
  onError: (error: unknown) => void,
) {
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  const collector = new FetchOtlpExporter(
    tracing.otlp.url,
    tracing.otlp.headers,
    tracing.otlp.timeoutMs,
    tracing.otlp.protocol,
    onError,
  );
  const sampler = createSampler(tracing.sampler, tracing.ratio);
  const { idGenerator, startRootSpan } = rootSampling(sampler);
  const provider = new TracerProvider({
    resource,
    sampler,
    idGenerator,
    spanProcessors: [new TraceClockProcessor(), new SimpleSpanProcessor({ exporter: collector })],
  });
  trace.setGlobalTracerProvider(provider);
  configureStageSpans({ minDurationMs: config.minStageSpanMs ?? 0 });
  return {
    tracer: provider.getTracer(TRACER_NAME),
    startRootSpan,
    flush: () => collector.flush(),
  };
}

/** A reader with no timer: it collects when the isolate's next flush finds it due. */
class CollectOnFlush extends MetricReader {
  protected override async onForceFlush(): Promise<void> {}
  protected override async onShutdown(): Promise<void> {}
}

function workerMetrics(
  push: NonNullable<TelemetryConfig['otlpMetrics']>,
  resource: Resource,
  onError: (error: unknown) => void,
) {
  // the per-request series with bound attributes, as on Node (bound-metrics.ts)
  const bound = createBoundMetrics({ name: METER_NAME });
  const reader = new CollectOnFlush({ metricProducers: [bound.producer] });
  const provider = new MeterProvider({ resource, readers: [reader] });
  const instruments = createInstruments(provider.getMeter(METER_NAME), bound);
  let pushedAt = Date.now();
  let pushing = false;
  return {
    instruments,
    async flush(): Promise<void> {
      if (pushing || Date.now() - pushedAt < push.intervalMs) return;
      pushing = true;
      pushedAt = Date.now();
      try {
        const { resourceMetrics, errors } = await reader.collect();
        for (const error of errors) onError(error);
        const json = push.protocol === 'http/json';
        const body = (json ? JsonMetricsSerializer : ProtobufMetricsSerializer).serializeRequest(
          resourceMetrics,
        ) as Uint8Array<ArrayBuffer>;
        await postOtlp(push.url, push.headers, json, body, push.timeoutMs);
      } catch (error) {
        onError(error);
      } finally {
        pushing = false;
      }
    },
  };
}

/** One OTLP/HTTP export; throws on a transport error or a non-2xx answer. */
async function postOtlp(
  url: string,
  headers: Record<string, string>,
  json: boolean,
  body: Uint8Array<ArrayBuffer>,
  timeoutMs: number,
): Promise<void> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { ...headers, 'content-type': json ? 'application/json' : 'application/x-protobuf' },
    body,
    signal: AbortSignal.timeout(timeoutMs),
  });
  await res.body?.cancel();
  if (!res.ok) throw new Error(`OTLP collector answered HTTP ${res.status}`);
}

/** Keeps ended spans until `flush` posts them as one OTLP request (protobuf or JSON). */
class FetchOtlpExporter implements SpanExporter {
  #pending: ReadableSpan[] = [];
  #dropped = 0;

  constructor(
    private readonly url: string,
    private readonly headers: Record<string, string>,
    private readonly timeoutMs: number,
    private readonly protocol: OtlpProtocol,
    private readonly onError: (error: unknown) => void,
  ) {}

  export(spans: ReadableSpan[], done: (result: { code: ExportResultCode }) => void): void {
    const room = MAX_PENDING_SPANS - this.#pending.length;
    this.#pending.push(...spans.slice(0, Math.max(0, room)));
    this.#dropped += Math.max(0, spans.length - room);
    done({ code: ExportResultCode.SUCCESS });
  }

  async flush(): Promise<void> {
    const spans = this.#pending;
    if (spans.length === 0) return;
    this.#pending = [];
    const dropped = this.#dropped;
    this.#dropped = 0;
    try {
      const json = this.protocol === 'http/json';
      const body = (json ? JsonTraceSerializer : ProtobufTraceSerializer).serializeRequest(
        spans,
      ) as Uint8Array<ArrayBuffer>;
      await postOtlp(this.url, this.headers, json, body, this.timeoutMs);
      if (dropped > 0)
        throw new Error(`${dropped} spans dropped: more than ${MAX_PENDING_SPANS} between flushes`);
    } catch (error) {
      this.onError(error);
    }
  }

  async shutdown(): Promise<void> {
    await this.flush();
  }
}
