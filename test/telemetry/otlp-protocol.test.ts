import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseOtlpJsonLines } from '../../traces/otlp.ts';
import { startOtlpCollector } from '../support/otlp-collector.ts';
import { startTestServer, waitFor } from '../support/server.ts';

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const TRACEPARENT = `00-${TRACE_ID}-00f067aa0ba902b7-01`;

describe('OTLP export encoding (OTEL_EXPORTER_OTLP_PROTOCOL) against a real HTTP collector', () => {
  let collector: Awaited<ReturnType<typeof startOtlpCollector>>;
  beforeAll(async () => {
    collector = await startOtlpCollector();
  });
  afterAll(() => collector?.close());

  async function exportOneTrace(env: Record<string, string>) {
    collector.posts.length = 0;
    const server = await startTestServer({
      OTEL_EXPORTER_OTLP_ENDPOINT: collector.url,
      OTEL_TRACES_SAMPLER: 'parentbased_always_off',
      OTEL_BSP_SCHEDULE_DELAY: '20',
      OTEL_METRIC_EXPORT_INTERVAL: '100',
      ...env,
    });
    try {
      const res = await fetch(`${server.url}/health`, { headers: { traceparent: TRACEPARENT } });
      expect(res.status).toBe(200);
      await waitFor(
        () => collector.traces().length > 0 && collector.metrics().length > 0,
        5000,
        'a trace and a metrics post',
      );
    } finally {
      await server.cleanup();
    }
    return { traces: collector.traces(), metrics: collector.metrics() };
  }

  it('sends protobuf by default (the standard default), for traces and metrics', async () => {
    const { traces, metrics } = await exportOneTrace({});
    for (const post of [...traces, ...metrics]) expect(post.type).toBe('application/x-protobuf');
    const body = Buffer.concat(traces.map((p) => p.body));
    // protobuf carries ids as raw bytes and strings verbatim: the sampled parent's trace
    // id and the server span's name are in the body, and it is not JSON
    expect(body.includes(Buffer.from(TRACE_ID, 'hex'))).toBe(true);
    expect(body.includes(Buffer.from('GET /health'))).toBe(true);
    expect(body.includes(Buffer.from(TRACE_ID))).toBe(false);
  });

  it('sends OTLP/JSON when asked, per signal', async () => {
    const { traces, metrics } = await exportOneTrace({
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_EXPORTER_OTLP_METRICS_PROTOCOL: 'http/protobuf',
    });
    for (const post of traces) expect(post.type).toBe('application/json');
    for (const post of metrics) expect(post.type).toBe('application/x-protobuf');
    const spans = traces.flatMap((p, i) => parseOtlpJsonLines(p.body.toString(), `post ${i}`));
    const server = spans.find((s) => s.traceId === TRACE_ID && s.kind === 2);
    expect(server?.name).toBe('GET /health');
  });
});
