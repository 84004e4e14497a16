import type { MeterProvider } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import type { Resource } from '@opentelemetry/resources';
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BatchSpanProcessor,
  ConsoleSpanExporter,
  ParentBasedSampler,
  type Sampler,
  SimpleSpanProcessor,
  type SpanExporter,
  type SpanProcessor,
  TraceIdRatioBasedSampler,
  TracerProvider,
} from '@opentelemetry/sdk-trace';
import { OtlpJsonFileExporter } from './file-exporter.ts';

/** The trace half of the telemetry config (the standard `OTEL_*` variables, parsed). */
export interface TracingConfig {
  sampler: SamplerName;
  /** For the `traceidratio` samplers. */
  ratio: number;
  exporters: ReadonlyArray<'otlp' | 'file' | 'console'>;
  otlp: { url: string; headers: Record<string, string>; timeoutMs: number };
  file: { dir: string; maxBytes: number; maxFiles: number };
  batch: {
    maxQueueSize: number;
    maxExportBatchSize: number;
    scheduledDelayMillis: number;
    exportTimeoutMillis: number;
  };
}

export type SamplerName =
  | 'always_on'
  | 'always_off'
  | 'traceidratio'
  | 'parentbased_always_on'
  | 'parentbased_always_off'
  | 'parentbased_traceidratio';

export function createSampler(name: SamplerName, ratio: number): Sampler {
  switch (name) {
    case 'always_on':
      return new AlwaysOnSampler();
    case 'always_off':
      return new AlwaysOffSampler();
    case 'traceidratio':
      return new TraceIdRatioBasedSampler(ratio);
    case 'parentbased_always_on':
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
    case 'parentbased_always_off':
      return new ParentBasedSampler({ root: new AlwaysOffSampler() });
    case 'parentbased_traceidratio':
      return new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(ratio) });
  }
}

/**
 * The tracer provider: every configured exporter behind a bounded batch processor (a
 * slow or unreachable collector costs memory up to the queue size, never request
 * latency; what does not fit is dropped and counted by the SDK's own
 * `otel.sdk.processor.span.processed{error_type}` metric). `extra` exporters (tests'
 * in-memory one) are synchronous.
 */
export function createTracerProvider(
  config: TracingConfig,
  resource: Resource,
  meterProvider: MeterProvider,
  extra: readonly SpanExporter[] = [],
): TracerProvider {
  const exporters: SpanExporter[] = config.exporters.map((kind) => {
    if (kind === 'otlp') {
      return new OTLPTraceExporter({
        url: config.otlp.url,
        headers: config.otlp.headers,
        timeoutMillis: config.otlp.timeoutMs,
      });
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
  return new TracerProvider({
    resource,
    sampler: createSampler(config.sampler, config.ratio),
    spanProcessors,
  });
}

/** `key=value,key2=value2` (OTEL_EXPORTER_OTLP_HEADERS; values may be URL-encoded). */
export function parseOtlpHeaders(value: string | undefined): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const pair of (value ?? '').split(',')) {
    const at = pair.indexOf('=');
    if (at <= 0) continue;
    headers[pair.slice(0, at).trim()] = decodeURIComponent(pair.slice(at + 1).trim());
  }
  return headers;
}
