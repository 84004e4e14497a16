import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FlatSpan, parseOtlpJsonLines } from '../../traces/otlp.ts';
import { startOtlpCollector } from '../support/otlp-collector.ts';
import { type Cast, castFrom } from '../support/people.ts';
import { waitFor } from '../support/server.ts';
import { startWorkerTestApp } from '../support/worker.ts';

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';

/**
 * Traces from workerd: the Worker's spans reach an OTLP/HTTP collector, joined to the
 * caller's `traceparent`, with the stages every layer records, and without the session
 * token anywhere.
 */
describe('traces exported from the Worker (OTLP/JSON over fetch, ctx.waitUntil)', () => {
  let t: Awaited<ReturnType<typeof startWorkerTestApp>>;
  let collector: Awaited<ReturnType<typeof startOtlpCollector>>;
  let cast: Cast;
  const bodies = () => collector.traces().map((p) => p.body.toString());
  const spans = () => bodies().flatMap((body, i) => parseOtlpJsonLines(body, `post ${i + 1}`));

  beforeAll(async () => {
    collector = await startOtlpCollector();
    t = await startWorkerTestApp({
      preset: 'batch',
      env: {
        OTEL_EXPORTER_OTLP_ENDPOINT: collector.url,
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
        OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
        OTEL_TRACES_SAMPLER_ARG: '0',
        OTEL_SERVICE_NAME: 'dataflow-worker',
      },
    });
    cast = castFrom(t.fixture);
  }, 60_000);
  afterAll(async () => {
    await t?.close();
    await collector?.close();
  });

  it("joins the caller's sampled trace: server span, auth and db stages, no token", async () => {
    const token = await t.token({ userId: cast.adminA.id, orgId: cast.orgA.id, role: 'admin' });
    const traceId = TRACE_ID;
    const res = await t.call(`/api/orgs/${cast.orgA.id}/members?limit=50`, {
      token,
      headers: { traceparent: `00-${traceId}-00f067aa0ba902b7-01` },
    });
    expect(res.status).toBe(200);
    await waitFor(() => spans().some((s) => s.kind === 2 && s.traceId === traceId), 5000, 'spans');
    const trace = spans().filter((s) => s.traceId === traceId);
    const server = trace.find((s) => s.kind === 2)!;
    expect(server).toMatchObject({
      name: 'GET /api/orgs/:orgId/members',
      parentSpanId: '00f067aa0ba902b7',
      service: 'dataflow-worker',
    });
    expect(server.attributes['http.response.status_code']).toBe(200);
    const stages = new Set(trace.map((s: FlatSpan) => s.attributes['dataflow.stage']));
    expect(stages).toContain('auth');
    expect(stages).toContain('db');
    // every other span of the request hangs under the server span
    const ids = new Set(trace.map((s) => s.spanId));
    for (const span of trace) if (span !== server) expect(ids).toContain(span.parentSpanId);
    expect(bodies().join('\n')).not.toContain(token);
  });

  it('records nothing for an unsampled request (ratio 0, no sampled parent)', async () => {
    const before = spans().length;
    const res = await t.call('/health', {
      headers: { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00' },
    });
    expect(res.status).toBe(200);
    await t.call('/health');
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(spans().length).toBe(before);
  });
});

describe('the Worker exports protobuf by default (the standard OTLP default)', () => {
  it('posts application/x-protobuf carrying the sampled trace, without the token', async () => {
    const collector = await startOtlpCollector();
    const t = await startWorkerTestApp({
      preset: 'batch',
      env: { OTEL_EXPORTER_OTLP_ENDPOINT: collector.url, OTEL_SERVICE_NAME: 'dataflow-worker' },
    });
    try {
      const cast = castFrom(t.fixture);
      const token = await t.token({ userId: cast.adminA.id, orgId: cast.orgA.id, role: 'admin' });
      const res = await t.call(`/api/orgs/${cast.orgA.id}/members?limit=5`, {
        token,
        headers: { traceparent: `00-${TRACE_ID}-00f067aa0ba902b7-01` },
      });
      expect(res.status).toBe(200);
      const traceBytes = Buffer.from(TRACE_ID, 'hex');
      await waitFor(
        () => collector.traces().some((p) => p.body.includes(traceBytes)),
        5000,
        'a protobuf post with the trace',
      );
      for (const post of collector.traces()) expect(post.type).toBe('application/x-protobuf');
      const body = Buffer.concat(collector.traces().map((p) => p.body));
      expect(body.includes(Buffer.from('GET /api/orgs/:orgId/members'))).toBe(true);
      expect(body.includes(Buffer.from(token))).toBe(false);
    } finally {
      await t.close();
      await collector.close();
    }
  }, 60_000);
});

interface OtlpJsonAttribute {
  key: string;
  value: { stringValue?: string; intValue?: string | number };
}
interface OtlpJsonMetric {
  name: string;
  histogram?: { dataPoints: Array<{ attributes: OtlpJsonAttribute[]; count: string | number }> };
}
interface OtlpJsonMetrics {
  resourceMetrics: Array<{
    resource: { attributes: OtlpJsonAttribute[] };
    scopeMetrics: Array<{ metrics: OtlpJsonMetric[] }>;
  }>;
}

describe('metrics pushed from the Worker (OTLP/JSON over fetch, when an interval has passed)', () => {
  it("counts each request by route, and the database's round trips, without the token", async () => {
    const collector = await startOtlpCollector();
    const t = await startWorkerTestApp({
      preset: 'batch',
      env: {
        OTEL_EXPORTER_OTLP_ENDPOINT: collector.url,
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
        OTEL_TRACES_EXPORTER: 'none',
        OTEL_METRIC_EXPORT_INTERVAL: '200',
        OTEL_SERVICE_NAME: 'dataflow-worker',
      },
    });
    try {
      const cast = castFrom(t.fixture);
      const token = await t.token({ userId: cast.adminA.id, orgId: cast.orgA.id, role: 'admin' });
      const members = `/api/orgs/${cast.orgA.id}/members?limit=5`;
      for (let i = 0; i < 3; i++) expect((await t.call(members, { token })).status).toBe(200);
      // the series are cumulative: the newest push counts every request before it
      const requests = (route: string) => {
        const last = collector.metrics().at(-1);
        if (!last) return 0;
        const body = JSON.parse(last.body.toString()) as OtlpJsonMetrics;
        return body.resourceMetrics
          .flatMap((r) => r.scopeMetrics.flatMap((s) => s.metrics))
          .filter((m) => m.name === 'http.server.request.duration')
          .flatMap((m) => m.histogram?.dataPoints ?? [])
          .filter((p) =>
            p.attributes.some((a) => a.key === 'http.route' && a.value.stringValue === route),
          )
          .reduce((sum, p) => sum + Number(p.count), 0);
      };
      // a push goes out after a request once the interval has passed since the last one
      await waitFor(
        async () => {
          await t.call('/health');
          return requests('/api/orgs/:orgId/members') === 3 && requests('/health') >= 1;
        },
        10_000,
        'a push counting the three members requests and a /health',
      );
      const last = collector.metrics().at(-1)!;
      expect(last.type).toBe('application/json');
      const body = JSON.parse(last.body.toString()) as OtlpJsonMetrics;
      const resource = Object.fromEntries(
        body.resourceMetrics[0]!.resource.attributes.map((a) => [a.key, a.value.stringValue]),
      );
      expect(resource['service.name']).toBe('dataflow-worker');
      expect(resource['service.instance.id']).toMatch(/^[0-9a-f-]{36}$/);
      const names = new Set(
        body.resourceMetrics.flatMap((r) =>
          r.scopeMetrics.flatMap((s) => s.metrics.map((m) => m.name)),
        ),
      );
      expect(names).toContain('db.client.operation.duration');
      expect(names).toContain('http.server.active_requests');
      // no Node runtime series on workerd, and no trace was asked for
      expect(names).not.toContain('nodejs.eventloop.delay.p99');
      expect(collector.traces()).toEqual([]);
      expect(collector.metrics().some((p) => p.body.includes(token))).toBe(false);
    } finally {
      await t.close();
      await collector.close();
    }
  }, 60_000);
});
