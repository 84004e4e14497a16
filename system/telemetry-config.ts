import { type Env, EnvError } from './env.ts';
import type { TelemetryConfig } from './telemetry/telemetry.ts';
import type { TracingConfig } from './telemetry/tracing.ts';

/**
 * The standard `OTEL_*` variables (read by `env.ts`) -> the plain config the telemetry
 * wiring takes. Part of the composition root: the SDK wiring in `telemetry/` knows no
 * environment, and no domain folder imports `telemetry/`.
 */
/** Maps the environment to the telemetry config; undefined when everything is off. */
export function telemetryConfig(env: Env): TelemetryConfig | undefined {
  const disabled = env.OTEL_SDK_DISABLED;
  const endpoint = (signal: string, specific: string | undefined) =>
    specific ??
    (env.OTEL_EXPORTER_OTLP_ENDPOINT
      ? `${env.OTEL_EXPORTER_OTLP_ENDPOINT.replace(/\/$/, '')}/v1/${signal}`
      : undefined);
  const tracesUrl = endpoint('traces', env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
  const metricsUrl = endpoint('metrics', env.OTEL_EXPORTER_OTLP_METRICS_ENDPOINT);
  const headers = parseOtlpHeaders(env.OTEL_EXPORTER_OTLP_HEADERS);
  const traceExporters = (env.OTEL_TRACES_EXPORTER ?? (tracesUrl ? ['otlp'] : [])).filter(
    (kind) => kind !== 'none',
  );
  const metricExporters = env.OTEL_METRICS_EXPORTER ?? (metricsUrl ? ['otlp'] : []);
  if (traceExporters.includes('otlp') && !tracesUrl) {
    throw new EnvError('OTEL_TRACES_EXPORTER=otlp needs OTEL_EXPORTER_OTLP_ENDPOINT');
  }
  if (metricExporters.includes('otlp') && !metricsUrl) {
    throw new EnvError('OTEL_METRICS_EXPORTER=otlp needs OTEL_EXPORTER_OTLP_ENDPOINT');
  }
  const tracing: TracingConfig | undefined =
    !disabled && traceExporters.length > 0
      ? {
          sampler: env.OTEL_TRACES_SAMPLER,
          ratio: env.OTEL_TRACES_SAMPLER_ARG ?? (env.NODE_ENV === 'production' ? 0.1 : 1),
          exporters: traceExporters as TracingConfig['exporters'],
          otlp: {
            url: tracesUrl ?? '',
            headers,
            timeoutMs: env.OTEL_EXPORTER_OTLP_TIMEOUT,
            protocol: env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? env.OTEL_EXPORTER_OTLP_PROTOCOL,
          },
          file: {
            dir: env.TRACES_DIR,
            maxBytes: env.TRACES_FILE_MAX_BYTES,
            maxFiles: env.TRACES_FILE_MAX_FILES,
          },
          batch: {
            maxQueueSize: env.OTEL_BSP_MAX_QUEUE_SIZE,
            maxExportBatchSize: Math.min(
              env.OTEL_BSP_MAX_EXPORT_BATCH_SIZE,
              env.OTEL_BSP_MAX_QUEUE_SIZE,
            ),
            scheduledDelayMillis: env.OTEL_BSP_SCHEDULE_DELAY,
            exportTimeoutMillis: env.OTEL_BSP_EXPORT_TIMEOUT,
          },
        }
      : undefined;
  const otlpMetrics =
    !disabled && metricExporters.includes('otlp') && metricsUrl
      ? {
          url: metricsUrl,
          headers,
          intervalMs: env.OTEL_METRIC_EXPORT_INTERVAL,
          timeoutMs: env.OTEL_EXPORTER_OTLP_TIMEOUT,
          protocol: env.OTEL_EXPORTER_OTLP_METRICS_PROTOCOL ?? env.OTEL_EXPORTER_OTLP_PROTOCOL,
        }
      : undefined;
  const prometheus = env.METRICS_ENABLED;
  if (!prometheus && !otlpMetrics && !tracing) return undefined;
  return {
    serviceName: env.OTEL_SERVICE_NAME,
    prometheus,
    otlpMetrics,
    tracing,
    serverTiming: env.SERVER_TIMING ?? env.NODE_ENV !== 'production',
    minStageSpanMs: minStageSpanMs(env),
  };
}

/** `TRACES_MIN_STAGE_SPAN_US` in ms: 0 (every stage a span) outside production. */
export function minStageSpanMs(env: Env): number {
  return (env.TRACES_MIN_STAGE_SPAN_US ?? (env.NODE_ENV === 'production' ? 100 : 0)) / 1000;
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
