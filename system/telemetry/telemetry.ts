import { diag, propagation, trace } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPMetricExporter as OtlpJsonMetricExporter } from '@opentelemetry/exporter-metrics-otlp-http';
import { OTLPMetricExporter as OtlpProtobufMetricExporter } from '@opentelemetry/exporter-metrics-otlp-proto';
import { PrometheusExporter, PrometheusSerializer } from '@opentelemetry/exporter-prometheus';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  type IMetricReader,
  MeterProvider,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics';
import type { SpanExporter, TracerProvider } from '@opentelemetry/sdk-trace';
import type { MiddlewareHandler } from 'hono';
import { configureStageSpans, TRACER_NAME } from '../trace.ts';
import { createBoundMetrics } from './bound-metrics.ts';
import { type RootSpanStarter, serverSpans } from './http.ts';
import { createInstruments, type Instruments, METER_NAME } from './metrics.ts';
import { observeNodeRuntime } from './node-runtime-metrics.ts';

import { createTracerProvider, type OtlpProtocol, type TracingConfig } from './tracing.ts';

/**
 * The one place the OpenTelemetry SDK is wired: meter provider (Prometheus pull at
 * `/metrics`, OTLP push when configured), tracer provider (OTLP, OTLP/JSON files,
 * console), the AsyncLocalStorage context manager and W3C trace-context propagation.
 * Everything else uses `@opentelemetry/api` (see spans.ts) or plain hooks.
 */
export interface TelemetryConfig {
  serviceName: string;
  /** Serve Prometheus text (`render`). */
  prometheus: boolean;
  /** OTLP/HTTP metrics push. */
  otlpMetrics?:
    | {
        url: string;
        headers: Record<string, string>;
        intervalMs: number;
        /** One export's deadline (`OTEL_EXPORTER_OTLP_TIMEOUT`). */
        timeoutMs: number;
        protocol: OtlpProtocol;
      }
    | undefined;
  /** Tracing; undefined = no tracer provider (the API's no-op tracer). */
  tracing?: TracingConfig | undefined;
  serverTiming: boolean;
  /**
   * A stage shorter than this (ms), with no child span and no error, gets no span of its
   * own (`configureStageSpans` in trace.ts). @default 0, every stage a span
   */
  minStageSpanMs?: number;
  /** Extra span exporters (tests' in-memory exporter), synchronous. */
  spanExporters?: readonly SpanExporter[];
  /**
   * Paths whose requests never get a span (they still count in the metrics): the app's
   * `/metrics`, which a scraper calls every few seconds.
   */
  untracedPaths?: readonly string[];
}

export interface Telemetry extends Omit<Instruments, 'onRequest' | 'onActive'> {
  /** The request middleware: server span, timings, RED metrics, Server-Timing. */
  httpMiddleware: MiddlewareHandler;
  /** Prometheus text of every instrument (when `prometheus`). */
  render?: () => Promise<string>;
  /** Exports what is buffered (tests, shutdown). */
  flush(): Promise<void>;
  shutdown(): Promise<void>;
}

export function createTelemetry(
  config: TelemetryConfig,
  log: { warn(details: object, message: string): void } = { warn() {} },
): Telemetry {
  // No OpenTelemetry context manager: every stage is handed its request's span and
  // timings explicitly (trace.ts). On Node 20 an AsyncLocalStorage taxes every promise of
  // the process once enabled (the async hooks it runs on). The propagator reads and
  // writes `traceparent` (process-wide and stateless).
  if (config.tracing !== undefined || (config.spanExporters?.length ?? 0) > 0) {
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  }
  // SDK problems (an unreachable collector, a full queue) are logged, never thrown at requests
  diag.setLogger(
    {
      error: (message, ...args) => log.warn({ args: args.map(String) }, `otel: ${message}`),
      warn: (message, ...args) => log.warn({ args: args.map(String) }, `otel: ${message}`),
      info: () => {},
      debug: () => {},
      verbose: () => {},
    },
    { suppressOverrideMessage: true },
  );

  const resource = resourceFromAttributes({ 'service.name': config.serviceName });
  // the per-request series, with bound attributes, reach every reader through a producer
  const bound = createBoundMetrics({ name: METER_NAME });
  const metricProducers = [bound.producer];
  const prometheus = config.prometheus
    ? new PrometheusExporter({ preventServerStart: true, metricProducers })
    : undefined;
  const readers: IMetricReader[] = [];
  if (prometheus) readers.push(prometheus);
  if (config.otlpMetrics) {
    const { url, headers, protocol, timeoutMs: timeoutMillis } = config.otlpMetrics;
    readers.push(
      new PeriodicExportingMetricReader({
        exporter:
          protocol === 'http/json'
            ? new OtlpJsonMetricExporter({ url, headers, timeoutMillis })
            : new OtlpProtobufMetricExporter({ url, headers, timeoutMillis }),
        exportIntervalMillis: config.otlpMetrics.intervalMs,
        metricProducers,
      }),
    );
  }
  const meterProvider = new MeterProvider({ resource, readers });
  const meter = meterProvider.getMeter(METER_NAME);
  const instruments = createInstruments(meter, bound);
  const stopRuntimeMetrics = observeNodeRuntime(meter);

  let tracerProvider: TracerProvider | undefined;
  let startRootSpan: RootSpanStarter | undefined;
  if (config.tracing || config.spanExporters?.length) {
    const tracing = createTracerProvider(
      config.tracing ?? {
        sampler: 'parentbased_always_on',
        ratio: 1,
        exporters: [],
        otlp: { url: '', headers: {}, timeoutMs: 10_000, protocol: 'http/protobuf' },
        file: { dir: 'traces/out', maxBytes: 1 << 24, maxFiles: 4 },
        batch: {
          maxQueueSize: 2048,
          maxExportBatchSize: 512,
          scheduledDelayMillis: 5000,
          exportTimeoutMillis: 30_000,
        },
      },
      resource,
      meterProvider,
      config.spanExporters,
    );
    tracerProvider = tracing.provider;
    startRootSpan = tracing.startRootSpan;
    // the newest server's provider wins (one per process in production; tests start several)
    trace.disable();
    trace.setGlobalTracerProvider(tracerProvider);
    configureStageSpans({ minDurationMs: config.minStageSpanMs ?? 0 });
  }
  const tracer = tracerProvider?.getTracer(TRACER_NAME);
  const serializer = new PrometheusSerializer();

  const httpMiddleware = serverSpans({
    tracer,
    startRootSpan,
    serverTiming: config.serverTiming,
    untracedPaths: config.untracedPaths,
    onActive: instruments.onActive,
    onRequest: instruments.onRequest,
  });

  return {
    ...instruments,
    httpMiddleware,
    render: prometheus
      ? async () => serializer.serialize((await prometheus.collect()).resourceMetrics)
      : undefined,
    async flush() {
      await tracerProvider?.forceFlush();
    },
    async shutdown() {
      stopRuntimeMetrics();
      if (tracerProvider) {
        await tracerProvider.shutdown().catch(() => {});
        if (trace.getTracerProvider() === tracerProvider) trace.disable();
      }
      await meterProvider.shutdown().catch(() => {});
    },
  };
}
