import type { MeterProvider } from '@opentelemetry/api';
import { OTLPTraceExporter as OtlpJsonTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as OtlpProtobufTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import type { Resource } from '@opentelemetry/resources';
import {
  BatchSpanProcessor,
  ConsoleSpanExporter,
  SimpleSpanProcessor,
  type SpanExporter,
  type SpanProcessor,
  TracerProvider,
} from '@opentelemetry/sdk-trace';
import { OtlpJsonFileExporter } from './file-exporter.ts';
import type { RootSpanStarter } from './http.ts';
import { createSampler, rootSampling, type SamplerName } from './sampler.ts';
import { TraceClockProcessor } from './trace-clock.ts';

export type { SamplerName };

/** `OTEL_EXPORTER_OTLP_PROTOCOL` values this app speaks (OTLP over HTTP). */
export type OtlpProtocol = 'http/protobuf' | 'http/json';

/** The trace half of the telemetry config (the standard `OTEL_*` variables, parsed). */
export interface TracingConfig {
  sampler: SamplerName;
  /** For the `traceidratio` samplers. */
  ratio: number;
  exporters: ReadonlyArray<'otlp' | 'file' | 'console'>;
  otlp: {
    url: string;
    headers: Record<string, string>;
    timeoutMs: number;
    protocol: OtlpProtocol;
  };
  file: { dir: string; maxBytes: number; maxFiles: number };
  batch: {
    maxQueueSize: number;
    maxExportBatchSize: number;
    scheduledDelayMillis: number;
    exportTimeoutMillis: number;
  };
}

/**
 * The tracer provider: every configured exporter behind a bounded batch processor (a
 * slow or unreachable collector costs memory up to the queue size, never request
 * latency; what does not fit is dropped and counted by the SDK's own
 * `otel.sdk.processor.span.processed{error_type}` metric). `extra` exporters (tests'
 * in-memory one) are synchronous. With it, `startRootSpan` for the request middleware
 * (an unsampled request without a `traceparent` gets no span).
 */
export function createTracerProvider(
  config: TracingConfig,
  resource: Resource,
  meterProvider: MeterProvider,
  extra: readonly SpanExporter[] = [],
): { provider: TracerProvider; startRootSpan: RootSpanStarter } {
  const exporters: SpanExporter[] = config.exporters.map((kind) => {
    if (kind === 'otlp') {
      const options = {
        url: config.otlp.url,
        headers: config.otlp.headers,
        timeoutMillis: config.otlp.timeoutMs,
      };
      return config.otlp.protocol === 'http/json'
        ? new OtlpJsonTraceExporter(options)
        : new OtlpProtobufTraceExporter(options);
    }
    if (kind === 'file') {
      return new OtlpJsonFileExporter({
        ...config.file,
        prefix: String(resource.attributes['service.name'] ?? 'service'),
      });
    }
    return new ConsoleSpanExporter();
  });
  const spanProcessors: SpanProcessor[] = [
    // first: the exporters see each span's start on its trace's clock
    new TraceClockProcessor(),
    ...exporters.map(
      (exporter) =>
        new BatchSpanProcessor({
          exporter,
          ...config.batch,
          selfObsMeterProvider: meterProvider,
        }),
    ),
    ...extra.map((exporter) => new SimpleSpanProcessor({ exporter })),
  ];
  const sampler = createSampler(config.sampler, config.ratio);
  const { idGenerator, startRootSpan } = rootSampling(sampler);
  return {
    provider: new TracerProvider({ resource, sampler, idGenerator, spanProcessors }),
    startRootSpan,
  };
}
