import { propagation, trace } from '@opentelemetry/api';
import { ExportResultCode, W3CTraceContextPropagator } from '@opentelemetry/core';
import { JsonTraceSerializer, ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  type ReadableSpan,
  SimpleSpanProcessor,
  type SpanExporter,
  TracerProvider,
} from '@opentelemetry/sdk-trace';
import type { MiddlewareHandler } from 'hono';
import { configureStageSpans, TRACER_NAME } from '../trace.ts';
import { serverSpans } from './http.ts';
import { createSampler, rootSampling } from './sampler.ts';
import type { TelemetryConfig } from './telemetry.ts';
import { TraceClockProcessor } from './trace-clock.ts';
import type { OtlpProtocol } from './tracing.ts';

/**
 * Tracing on Workers: the same spans as on Node (the server span of http.ts, every
 * stage's `traced`), exported as OTLP/JSON over `fetch`. A Worker has no life between
 * requests for a batch processor's timer, and workerd forbids finishing one request's
 * I/O in another, so spans wait in memory and each request ships what has ended with
 * `ctx.waitUntil(flush())`, after its response. Metrics are not exported from Workers
 * (no scrape target per isolate); the Node app and the benches carry them.
 */
export interface WorkerTelemetry {
  middleware: MiddlewareHandler;
  /** Posts the ended spans to the collector; for `ctx.waitUntil`. Never rejects. */
  flush(): Promise<void>;
}

/** Spans kept at most between two flushes; past it they are dropped and counted. */
const MAX_PENDING_SPANS = 2048;

export function createWorkerTelemetry(
  config: TelemetryConfig,
  onError: (error: unknown) => void,
): WorkerTelemetry | undefined {
  const tracing = config.tracing;
  if (!tracing?.exporters.includes('otlp')) return undefined;
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
    resource: resourceFromAttributes({ 'service.name': config.serviceName }),
    sampler,
    idGenerator,
    spanProcessors: [new TraceClockProcessor(), new SimpleSpanProcessor({ exporter: collector })],
  });
  trace.setGlobalTracerProvider(provider);
  configureStageSpans({ minDurationMs: config.minStageSpanMs ?? 0 });
  return {
    middleware: serverSpans({
      tracer: provider.getTracer(TRACER_NAME),
      startRootSpan,
      serverTiming: config.serverTiming,
    }),
    flush: () => collector.flush(),
  };
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
      const res = await fetch(this.url, {
        method: 'POST',
        headers: {
          ...this.headers,
          'content-type': json ? 'application/json' : 'application/x-protobuf',
        },
        body,
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      await res.body?.cancel();
      if (!res.ok) throw new Error(`OTLP collector answered HTTP ${res.status}`);
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
