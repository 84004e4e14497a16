import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FlatSpan, parseOtlpJsonLines } from '../../traces/otlp.ts';
import { type Cast, castFrom } from '../support/people.ts';
import { waitFor } from '../support/server.ts';
import { startWorkerTestApp } from '../support/worker.ts';

/**
 * Traces from workerd: the Worker's spans reach an OTLP/HTTP collector (here a real HTTP
 * server taking what the Worker posts), joined to the caller's `traceparent`, with the
 * stages every layer records, and without the session token anywhere.
 */
describe('traces exported from the Worker (OTLP/JSON over fetch, ctx.waitUntil)', () => {
  let t: Awaited<ReturnType<typeof startWorkerTestApp>>;
  let collector: Server;
  let cast: Cast;
  const bodies: string[] = [];
  const spans = () => bodies.flatMap((body, i) => parseOtlpJsonLines(body, `post ${i + 1}`));

  beforeAll(async () => {
    collector = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => {
        body += chunk.toString();
      });
      req.on('end', () => {
        if (req.url === '/v1/traces') bodies.push(body);
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((resolve) => collector.listen(0, '127.0.0.1', resolve));
    const { port } = collector.address() as AddressInfo;
    t = await startWorkerTestApp({
      preset: 'batch',
      env: {
        OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`,
        OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
        OTEL_TRACES_SAMPLER_ARG: '0',
        OTEL_SERVICE_NAME: 'dataflow-worker',
      },
    });
    cast = castFrom(t.fixture);
  }, 60_000);
  afterAll(async () => {
    await t?.close();
    await new Promise((resolve) => collector?.close(resolve));
  });

  it("joins the caller's sampled trace: server span, auth and db stages, no token", async () => {
    const token = await t.token({ userId: cast.adminA.id, orgId: cast.orgA.id, role: 'admin' });
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
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
    expect(bodies.join('\n')).not.toContain(token);
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
