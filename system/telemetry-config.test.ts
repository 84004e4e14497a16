import { describe, expect, it } from 'vitest';
import { loadEnv } from './env.ts';
import { telemetryConfig } from './telemetry-config.ts';

describe('telemetryConfig (standard OTEL_* variables)', () => {
  it('defaults: Prometheus pull only, no tracer provider, Server-Timing outside production', () => {
    const config = telemetryConfig(loadEnv({}))!;
    expect(config.prometheus).toBe(true);
    expect(config.tracing).toBeUndefined();
    expect(config.otlpMetrics).toBeUndefined();
    expect(config.serverTiming).toBe(true);
  });

  it('an OTLP endpoint turns on trace and metric push; ratio 1 in development, 0.1 in production', () => {
    const dev = telemetryConfig(
      loadEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318/' }),
    )!;
    expect(dev.tracing?.exporters).toEqual(['otlp']);
    expect(dev.tracing?.otlp.url).toBe('http://127.0.0.1:4318/v1/traces');
    expect(dev.otlpMetrics?.url).toBe('http://127.0.0.1:4318/v1/metrics');
    // one timeout for both signals, as the OpenTelemetry variable means it
    expect(dev.otlpMetrics?.timeoutMs).toBe(dev.tracing?.otlp.timeoutMs);
    expect(dev.otlpMetrics?.timeoutMs).toBe(10_000);
    expect(dev.tracing?.sampler).toBe('parentbased_traceidratio');
    expect(dev.tracing?.ratio).toBe(1);
    const prod = telemetryConfig(
      loadEnv({
        NODE_ENV: 'production',
        CLERK_JWT_KEY: 'k',
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318',
        OTEL_EXPORTER_OTLP_HEADERS: 'api-key=s3cr%20et',
      }),
    )!;
    expect(prod.tracing?.ratio).toBe(0.1);
    expect(prod.tracing?.otlp.headers).toEqual({ 'api-key': 's3cr et' });
    expect(prod.serverTiming).toBe(false);
  });

  it('stage spans: every stage in development, stages of 100 µs or more in production, or as set', () => {
    const production = { NODE_ENV: 'production', CLERK_JWT_KEY: 'k' };
    expect(telemetryConfig(loadEnv({}))!.minStageSpanMs).toBe(0);
    expect(telemetryConfig(loadEnv(production))!.minStageSpanMs).toBe(0.1);
    expect(
      telemetryConfig(loadEnv({ ...production, TRACES_MIN_STAGE_SPAN_US: '0' }))!.minStageSpanMs,
    ).toBe(0);
    expect(telemetryConfig(loadEnv({ TRACES_MIN_STAGE_SPAN_US: '250' }))!.minStageSpanMs).toBe(
      0.25,
    );
    expect(() => loadEnv({ TRACES_MIN_STAGE_SPAN_US: '-1' })).toThrow(/TRACES_MIN_STAGE_SPAN_US/);
  });

  it('OTLP encoding: protobuf by default, one variable for both signals, one per signal', () => {
    const endpoint = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318' };
    const byDefault = telemetryConfig(loadEnv(endpoint))!;
    expect(byDefault.tracing?.otlp.protocol).toBe('http/protobuf');
    expect(byDefault.otlpMetrics?.protocol).toBe('http/protobuf');
    const json = telemetryConfig(
      loadEnv({
        ...endpoint,
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
        OTEL_EXPORTER_OTLP_METRICS_PROTOCOL: 'http/protobuf',
      }),
    )!;
    expect(json.tracing?.otlp.protocol).toBe('http/json');
    expect(json.otlpMetrics?.protocol).toBe('http/protobuf');
    expect(() => loadEnv({ OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' })).toThrow(
      /OTEL_EXPORTER_OTLP_PROTOCOL="grpc"/,
    );
  });

  it('OTEL_SDK_DISABLED turns off traces and push; METRICS_ENABLED=false as well: nothing', () => {
    const env = loadEnv({
      OTEL_SDK_DISABLED: 'true',
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318',
      METRICS_ENABLED: 'false',
    });
    expect(telemetryConfig(env)).toBeUndefined();
  });

  it('refuses a bad sampler, ratio or exporter by name, and otlp without an endpoint', () => {
    expect(() => loadEnv({ OTEL_TRACES_SAMPLER_ARG: '2' })).toThrow(/OTEL_TRACES_SAMPLER_ARG="2"/);
    expect(() => loadEnv({ OTEL_TRACES_SAMPLER: 'sometimes' })).toThrow(
      /OTEL_TRACES_SAMPLER="sometimes"/,
    );
    expect(() => loadEnv({ OTEL_TRACES_EXPORTER: 'jaeger' })).toThrow(
      /OTEL_TRACES_EXPORTER="jaeger"/,
    );
    expect(() => telemetryConfig(loadEnv({ OTEL_TRACES_EXPORTER: 'otlp' }))).toThrow(
      /OTEL_TRACES_EXPORTER=otlp needs OTEL_EXPORTER_OTLP_ENDPOINT/,
    );
  });

  it('masks the OTLP headers when describing the environment', async () => {
    const { describeEnv } = await import('./env.ts');
    const described = describeEnv(loadEnv({ OTEL_EXPORTER_OTLP_HEADERS: 'api-key=secret' }));
    expect(JSON.stringify(described)).not.toContain('secret');
  });
});
