import { PrometheusExporter, PrometheusSerializer } from '@opentelemetry/exporter-prometheus';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { describe, expect, it } from 'vitest';
import { createBoundMetrics } from './bound-metrics.ts';

/** Bound series and SDK instruments behind one Prometheus reader, as in the app. */
function readers() {
  const bound = createBoundMetrics({ name: 'dataflow' });
  const exporter = new PrometheusExporter({
    preventServerStart: true,
    metricProducers: [bound.producer],
  });
  const provider = new MeterProvider({ readers: [exporter] });
  return { bound, provider, exporter };
}

describe('bound metrics', () => {
  it('export exactly what an SDK instrument exports for the same recordings', async () => {
    const { bound, provider, exporter } = readers();
    const meter = provider.getMeter('dataflow');
    const boundaries = [0.001, 0.01, 0.1, 1];
    const sdk = meter.createHistogram('sdk.duration', {
      unit: 's',
      description: 'd',
      advice: { explicitBucketBoundaries: boundaries },
    });
    const family = bound.histogram('bound.duration', { unit: 's', description: 'd', boundaries });
    const sdkCounter = meter.createCounter('sdk.lookups', { description: 'c' });
    const counters = bound.counter('bound.lookups', { description: 'c' });
    const attributes = {
      'http.route': '/api/orgs/:orgId/members',
      'http.response.status_code': 200,
    };
    for (const value of [0.0005, 0.001, 0.003, 0.25, 2, 0.001]) {
      sdk.record(value, attributes);
      family.bind('members 200', () => attributes).record(value);
    }
    for (const result of ['hit', 'hit', 'miss']) {
      sdkCounter.add(1, { 'dataflow.cache.result': result });
      counters.bind(result, () => ({ 'dataflow.cache.result': result })).add(1);
    }
    const text = new PrometheusSerializer().serialize((await exporter.collect()).resourceMetrics);
    const lines = (prefix: string) =>
      text
        .split('\n')
        .filter((l) => l.startsWith(prefix))
        .map((l) => l.slice(prefix.length))
        .sort();
    expect(lines('bound_duration')).toEqual(lines('sdk_duration'));
    expect(lines('bound_duration')).toHaveLength(4 + 1 + 2); // 5 buckets (le), sum, count
    expect(lines('bound_lookups')).toEqual(lines('sdk_lookups'));
    expect(text).toContain(
      'bound_lookups_total{dataflow_cache_result="hit",otel_scope_name="dataflow"} 2',
    );
    await provider.shutdown();
  });

  it('a family is exported once it has recorded something, as an SDK instrument is', async () => {
    const { bound, provider, exporter } = readers();
    bound.histogram('bound.quiet', { description: 'q', boundaries: [1] });
    const text = new PrometheusSerializer().serialize((await exporter.collect()).resourceMetrics);
    expect(text).not.toContain('bound_quiet');
    await provider.shutdown();
  });
});
