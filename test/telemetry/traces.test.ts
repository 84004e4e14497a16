import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { userEvent } from '../../fixtures/clerk/events.ts';
import { generateFixture } from '../../fixtures/seed/generate.ts';
import { loadFixture } from '../../fixtures/seed/load.ts';
import { signedHeaders } from '../../load/webhook-sender.ts';
import { analyze } from '../../traces/analyze.ts';
import { readTraceFiles } from '../../traces/cli.ts';
import { castFrom } from '../support/people.ts';
import {
  asyncContextCarries,
  recordingClient,
  startTestServer,
  waitFor,
} from '../support/server.ts';

const fixture = generateFixture('small');
const cast = castFrom(fixture);
const PAGE = 20;
const CLIENT_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const CLIENT_SPAN = '00f067aa0ba902b7';

const kids = (spans: readonly ReadableSpan[], parent: ReadableSpan) =>
  spans.filter((s) => s.parentSpanContext?.spanId === parent.spanContext().spanId);
const named = (spans: readonly ReadableSpan[], name: string) =>
  spans.filter((s) => s.name === name);

async function membersTrace(preset: string, env: Record<string, string> = {}) {
  const exporter = new InMemorySpanExporter();
  const server = await startTestServer(
    { DATAFLOW_PRESET: preset, SERVER_TIMING: 'true', ...env },
    { spanExporters: [exporter] },
  );
  try {
    await loadFixture(server.database, fixture);
    const token = await server.token({
      userId: cast.adminA.id,
      orgId: cast.orgA.id,
      role: 'admin',
    });
    const get = () =>
      fetch(`${server.url}/api/orgs/${cast.orgA.id}/members?limit=${PAGE}`, {
        headers: {
          authorization: `Bearer ${token}`,
          traceparent: `00-${CLIENT_TRACE}-${CLIENT_SPAN}-01`,
        },
      });
    exporter.reset();
    const first = await get();
    expect(first.status).toBe(200);
    const firstSpans = [...exporter.getFinishedSpans()];
    exporter.reset();
    await (await get()).arrayBuffer();
    return {
      first: firstSpans,
      second: [...exporter.getFinishedSpans()],
      serverTiming: first.headers.get('server-timing') ?? '',
    };
  } finally {
    await server.cleanup();
  }
}

describe('trace of a members request', () => {
  it('baseline: one server span, auth, serialization, and the N+1 of user lookups', async () => {
    const { first, serverTiming } = await membersTrace('baseline');
    const [root, ...others] = first.filter((s) => s.kind === 1 /* SERVER */);
    expect(others).toEqual([]);
    expect(root!.name).toBe('GET /api/orgs/:orgId/members');
    // the client's traceparent is honored
    expect(root!.spanContext().traceId).toBe(CLIENT_TRACE);
    expect(root!.parentSpanContext?.spanId).toBe(CLIENT_SPAN);
    expect(root!.attributes['http.route']).toBe('/api/orgs/:orgId/members');
    expect(root!.attributes['http.response.status_code']).toBe(200);
    for (const name of ['auth.session', 'auth.membership', 'serialize']) {
      expect(named(first, name), name).toHaveLength(1);
    }
    const userLookups = kids(first, root!).filter(
      (s) => s.attributes['db.query.summary'] === 'SELECT users',
    );
    expect(userLookups).toHaveLength(PAGE);
    expect(userLookups[0]!.attributes['db.system.name']).toBe('sqlite');
    // no SQL text unless enabled, and never parameters
    expect(first.some((s) => s.attributes['db.query.text'] !== undefined)).toBe(false);
    expect(named(first, 'batch.user')).toEqual([]);
    expect(root!.attributes['dataflow.db.queries']).toBe(PAGE + 2);
    expect(serverTiming).toMatch(new RegExp(`db;dur=[\\d.]+;desc="${PAGE + 2}"`));
    expect(serverTiming).toMatch(/auth;dur=[\d.]+/);
    expect(serverTiming).toMatch(/total;dur=[\d.]+$/);
  });

  it('recommended: coalescing leader, a cache miss, the page joined with its users; then a hit with no DB', async () => {
    const { first, second } = await membersTrace('recommended');
    // every stage below was handed its parent: traces and Server-Timing without an async context
    expect(await asyncContextCarries()).toBe(false);
    const root = first.find((s) => s.kind === 1)!;
    expect(root.attributes['dataflow.coalesce.role']).toBe('leader');
    const [lookup] = named(first, 'cache.get');
    expect(lookup!.attributes['dataflow.cache.result']).toBe('miss');
    expect(lookup!.attributes['dataflow.cache.level']).toBe('memory');
    const [page] = named(first, 'batch.members_page');
    expect(kids(first, page!).map((s) => s.attributes['db.query.summary'])).toEqual([
      'SELECT memberships',
    ]);
    expect(first.filter((s) => s.attributes['db.query.summary'] === 'SELECT users')).toEqual([]);

    const again = second.find((s) => s.kind === 1)!;
    expect(named(second, 'cache.get')[0]!.attributes['dataflow.cache.result']).toBe('hit');
    expect(again.attributes['dataflow.cache.result']).toBe('hit');
    // the membership check is cached too (the change log invalidates it): no DB at all
    expect(again.attributes['dataflow.db.queries']).toBe(0);
  });

  it('with a minimum stage length (production: 100 µs), a hit is one span and a miss keeps the stages with queries', async () => {
    // far above any in-memory stage here, even on a loaded machine; the default is 100 µs
    const { first, second, serverTiming } = await membersTrace('recommended', {
      TRACES_MIN_STAGE_SPAN_US: '20000',
    });
    const hit = second.find((s) => s.kind === 1)!;
    expect(second).toEqual([hit]);
    expect(hit.attributes['dataflow.cache.result']).toBe('hit');
    // the miss: the stages that ran queries are there, each query under its stage
    const root = first.find((s) => s.kind === 1)!;
    const [page] = named(first, 'batch.members_page');
    expect(page!.parentSpanContext?.spanId).toBe(root.spanContext().spanId);
    expect(kids(first, page!).map((s) => s.attributes['db.query.summary'])).toEqual([
      'SELECT memberships',
    ]);
    expect(named(first, 'cache.get')).toEqual([]);
    for (const span of first) {
      if (span !== root)
        expect(first.map((s) => s.spanContext().spanId)).toContain(span.parentSpanContext?.spanId);
    }
    // Server-Timing still has every stage
    expect(serverTiming).toMatch(/auth;dur=[\d.]+/);
    expect(serverTiming).toMatch(/cache;dur=[\d.]+/);
  });
});

describe('trace of a webhook through to a WebSocket client', () => {
  for (const preset of ['baseline', 'recommended']) {
    it(`${preset}: verify, apply, invalidate, broadcast and client receipt share one trace`, async () => {
      const exporter = new InMemorySpanExporter();
      const server = await startTestServer(
        { DATAFLOW_PRESET: preset },
        { spanExporters: [exporter] },
      );
      try {
        await loadFixture(server.database, fixture);
        const token = await server.token({ userId: cast.adminA.id, orgId: cast.orgA.id });
        const client = recordingClient({ url: server.wsUrl, token: () => token });
        await client.ready();
        exporter.reset();
        const body = JSON.stringify(
          userEvent(
            'user.updated',
            { ...cast.memberA, firstName: 'Traced', updatedAt: Date.now() },
            Date.now(),
          ),
        );
        const res = await fetch(`${server.url}/webhooks/clerk`, {
          method: 'POST',
          headers: signedHeaders(server.webhookSecret, `msg_trace_${preset}`, body),
          body,
        });
        expect(res.status).toBe(200);
        await waitFor(
          () => named(exporter.getFinishedSpans(), 'realtime.receive').length > 0,
          5000,
          'receipt span',
        );
        client.close();
        const spans = exporter.getFinishedSpans();
        const root = spans.find((s) => s.name === 'POST /webhooks/clerk')!;
        const traceId = root.spanContext().traceId;
        const inTrace = spans.filter((s) => s.spanContext().traceId === traceId).map((s) => s.name);
        for (const name of [
          'webhook.verify',
          'webhook.apply',
          'webhook.publish',
          'realtime.broadcast',
          'realtime.receive',
        ]) {
          expect(inTrace, name).toContain(name);
        }
        if (preset === 'recommended') expect(inTrace).toContain('cache.invalidate');
        const apply = spans.find((s) => s.name === 'webhook.apply')!;
        expect(apply.attributes['sync.outcome']).toBe('applied');
        // dedupe, apply and change-log append are one write batch; its size on the span,
        // not in the summary (a metric label)
        const writes = kids(spans, apply).filter((s) => s.attributes['dataflow.stage'] === 'db');
        expect(writes.map((s) => s.attributes['db.query.summary'])).toEqual(['BATCH']);
        expect(writes[0]!.attributes['db.operation.batch.size']).toBeGreaterThanOrEqual(2);
        const receipt = spans.find((s) => s.name === 'realtime.receive')!;
        expect(receipt.kind).toBe(4 /* CONSUMER */);
        expect(receipt.parentSpanContext?.spanId).toBe(apply.spanContext().spanId);
      } finally {
        await server.cleanup();
      }
    });
  }
});

describe('trace of a WebSocket upgrade', () => {
  it("the upgrade joins the client's trace (traceparent query parameter); unsampled stays out", async () => {
    const exporter = new InMemorySpanExporter();
    const server = await startTestServer({}, { spanExporters: [exporter] });
    try {
      await loadFixture(server.database, fixture);
      const token = await server.token({ userId: cast.adminA.id, orgId: cast.orgA.id });
      for (const flags of ['01', '00']) {
        const client = recordingClient({
          url: server.wsUrl,
          token: () => token,
          traceparent: () => `00-${CLIENT_TRACE}-${CLIENT_SPAN}-${flags}`,
        });
        await client.ready();
        client.close();
      }
      const connects = named(exporter.getFinishedSpans(), 'realtime.connect');
      expect(connects).toHaveLength(1);
      expect(connects[0]!.spanContext().traceId).toBe(CLIENT_TRACE);
      expect(connects[0]!.parentSpanContext?.spanId).toBe(CLIENT_SPAN);
      expect(connects[0]!.attributes['http.response.status_code']).toBe(101);
    } finally {
      await server.cleanup();
    }
  });
});

describe('trace analyzer on captured runs (file exporter)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dataflow-traces-'));
  const reports: Record<string, ReturnType<typeof analyze>> = {};

  beforeAll(async () => {
    for (const preset of ['baseline', 'recommended']) {
      const tracesDir = join(dir, preset);
      const server = await startTestServer({
        DATAFLOW_PRESET: preset,
        OTEL_TRACES_EXPORTER: 'file',
        TRACES_DIR: tracesDir,
        OTEL_BSP_SCHEDULE_DELAY: '50',
      });
      await loadFixture(server.database, fixture);
      const token = await server.token({ userId: cast.adminA.id, orgId: cast.orgA.id });
      const get = () =>
        fetch(`${server.url}/api/orgs/${cast.orgA.id}/members?limit=${PAGE}`, {
          headers: { authorization: `Bearer ${token}` },
        }).then((r) => r.arrayBuffer());
      // concurrent identical reads: redundant fetches unless coalesced or cached
      for (let round = 0; round < 3; round++) await Promise.all(Array.from({ length: 4 }, get));
      await server.cleanup(); // shutdown flushes the file exporter
      reports[preset] = analyze(readTraceFiles([tracesDir]));
    }
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const members = (preset: string) =>
    reports[preset]!.routes.find((r) => r.route === '/api/orgs/:orgId/members')!;

  it('finds the N+1 on the members route in baseline', () => {
    const route = members('baseline');
    expect(route.requests).toBe(12);
    expect(route.nPlusOne.requests).toBe(12);
    expect(route.nPlusOne.worst).toEqual({ query: 'SELECT users', count: PAGE });
    expect(route.dbRoundTrips.mean).toBe(PAGE + 2);
    expect(route.redundantReads).toBeGreaterThan(0);
    expect(route.criticalPathMs.db).toBeGreaterThan(0);
  });

  it('finds no N+1 and fewer round trips under recommended', () => {
    const route = members('recommended');
    expect(route.requests).toBe(12);
    expect(route.nPlusOne.requests).toBe(0);
    expect(route.dbRoundTrips.mean).toBeLessThan(members('baseline').dbRoundTrips.mean / 5);
    expect(route.redundantReads).toBeLessThan(members('baseline').redundantReads);
  });
});

describe('the telemetry plumbing stays out of the traces', () => {
  it('a Prometheus scrape of /metrics makes no span, sampled parent or not; it still counts', async () => {
    const exporter = new InMemorySpanExporter();
    const server = await startTestServer(
      { METRICS_ENABLED: 'true' },
      { spanExporters: [exporter] },
    );
    try {
      const sampled = { traceparent: `00-${CLIENT_TRACE}-${CLIENT_SPAN}-01` };
      expect((await fetch(`${server.url}/metrics`)).status).toBe(200);
      expect((await fetch(`${server.url}/metrics`, { headers: sampled })).status).toBe(200);
      // the control: the same sampled request elsewhere is traced
      expect((await fetch(`${server.url}/health`, { headers: sampled })).status).toBe(200);
      const spans = exporter.getFinishedSpans();
      expect(spans.map((s) => s.attributes['http.route'])).toEqual(['/health']);
      const text = await (await fetch(`${server.url}/metrics`)).text();
      expect(text).toMatch(
        /http_server_request_duration_count\{[^}]*http_route="\/metrics"[^}]*\} 2/,
      );
    } finally {
      await server.cleanup();
    }
  });
});
