import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { delta, parsePrometheusText, type Samples, sum } from '../../bench/prometheus-text.ts';
import { userEvent } from '../../fixtures/clerk/events.ts';
import { generateFixture } from '../../fixtures/seed/generate.ts';
import { loadFixture } from '../../fixtures/seed/load.ts';
import { signedHeaders } from '../../load/webhook-sender.ts';
import { castFrom } from '../support/people.ts';
import { recordingClient, startTestServer, type TestServer, waitFor } from '../support/server.ts';

// After known traffic on the real server, /metrics counts exactly that traffic.
describe('GET /metrics', () => {
  let server: TestServer & { cleanup(): Promise<void> };
  const fixture = generateFixture('small');
  const cast = castFrom(fixture);
  let text = '';
  let metrics: Samples;
  /** What the app itself saw: the X-Cache of each members answer. */
  const xCache: string[] = [];
  /** DB round trips by the DB layer's own counter, read around each of two scrapes. */
  const stats: number[] = [];
  let first: Samples;

  beforeAll(async () => {
    server = await startTestServer({ DATAFLOW_PRESET: 'recommended' });
    await loadFixture(server.database, fixture);
    stats.push(server.database.stats().roundTrips);
    first = parsePrometheusText(await (await fetch(`${server.url}/metrics`)).text());
    stats.push(server.database.stats().roundTrips);
    const token = await server.token({
      userId: cast.adminA.id,
      orgId: cast.orgA.id,
      role: 'admin',
    });
    const client = recordingClient({ url: server.wsUrl, token: () => token });
    await client.ready();
    for (let i = 0; i < 3; i++) {
      const res = await fetch(`${server.url}/api/orgs/${cast.orgA.id}/members?limit=10`, {
        headers: { authorization: `Bearer ${token}` },
      });
      xCache.push(res.headers.get('x-cache') ?? 'none');
      await res.arrayBuffer();
    }
    const body = JSON.stringify(
      userEvent(
        'user.updated',
        { ...cast.memberA, firstName: 'Metric', updatedAt: Date.now() },
        Date.now(),
      ),
    );
    await fetch(`${server.url}/webhooks/clerk`, {
      method: 'POST',
      headers: signedHeaders(server.webhookSecret, `msg_metrics_${Date.now()}`, body),
      body,
    });
    // signed, but not an event: kept as a dead letter
    const junk = 'not json';
    const dead = await fetch(`${server.url}/webhooks/clerk`, {
      method: 'POST',
      headers: signedHeaders(server.webhookSecret, `msg_metrics_dead_${Date.now()}`, junk),
      body: junk,
    });
    expect(dead.status).toBeLessThan(300);
    await waitFor(() => client.changes.length > 0, 5000, 'a pushed change');
    stats.push(server.database.stats().roundTrips);
    text = await (await fetch(`${server.url}/metrics`)).text();
    stats.push(server.database.stats().roundTrips);
    metrics = parsePrometheusText(text);
    client.close();
  });
  afterAll(() => server?.cleanup());

  it('exposes request, database, lever, sync and realtime series', () => {
    const expected = [
      /http_server_request_duration_bucket\{[^}]*http_route="\/api\/orgs\/:orgId\/members"[^}]*http_response_status_code="200"/,
      /http_server_active_requests/,
      /dataflow_db_round_trips_total\{[^}]*\} [1-9]/,
      /db_client_operation_duration_bucket\{[^}]*db_query_summary="SELECT memberships"/,
      /dataflow_db_queries_per_request_bucket\{[^}]*http_route="\/api\/orgs\/:orgId\/members"/,
      /dataflow_db_group_commit_batches_count\{[^}]*\} [1-9]/,
      /sync_webhook_apply_duration_count\{[^}]*sync_outcome="applied"[^}]*\} 1/,
      /realtime_delivery_lag_count\{[^}]*\} [1-9]/,
      /dataflow_cache_lookups_total\{[^}]*dataflow_cache_result="hit"[^}]*\} [1-9]/,
      /dataflow_cache_lookups_total\{[^}]*dataflow_cache_result="miss"/,
      /dataflow_cache_invalidations_total\{[^}]*dataflow_cache_invalidation="precise"/,
      /dataflow_batch_size_bucket\{[^}]*dataflow_loader="membership"/,
      /dataflow_coalesce_requests_total\{[^}]*dataflow_coalesce_role="leader"/,
      /dataflow_breaker_state\{[^}]*\} 0/,
      /sync_webhook_events_total\{[^}]*sync_event_type="user.updated"[^}]*sync_outcome="applied"[^}]*\} 1/,
      /sync_webhook_lag_bucket/,
      /realtime_connections\{[^}]*\} 1/,
      /realtime_messages_sent_total\{[^}]*\} [1-9]/,
      /nodejs_eventloop_delay_p99\{[^}]*\} \d/,
      /process_memory_heap_used\{[^}]*\} [1-9]/,
      /process_memory_rss\{[^}]*\} [1-9]/,
    ];
    for (const pattern of expected) expect(text, String(pattern)).toMatch(pattern);
  });

  it('labels write batches without their size (bounded cardinality)', () => {
    expect(text).toMatch(/db_client_operation_duration_count\{[^}]*db_query_summary="BATCH"/);
    expect(text).not.toMatch(/db_query_summary="BATCH \d/);
  });

  it('counts exactly the traffic sent', () => {
    const members = { http_route: '/api/orgs/:orgId/members' };
    expect(sum(metrics, 'http_server_request_duration_count', members)).toBe(3);
    // the socket's upgrade cached the membership; the miss: the page joined with its 10
    // users; the two hits touch no database
    expect(xCache).toEqual(['miss', 'hit', 'hit']);
    expect(sum(metrics, 'dataflow_db_queries_per_request_sum', members)).toBe(1 + 0 + 0);
    // the cache lever's lookups are the answers' own X-Cache
    const lookups = (result: string) =>
      sum(metrics, 'dataflow_cache_lookups_total', { dataflow_cache_result: result });
    expect(lookups('hit')).toBe(xCache.filter((x) => x === 'hit').length);
    expect(lookups('miss')).toBe(xCache.filter((x) => x === 'miss').length);
    // every coalescable GET led its own flight (they were sequential)
    expect(
      sum(metrics, 'dataflow_coalesce_requests_total', { dataflow_coalesce_role: 'leader' }),
    ).toBe(3);
    // one membership lookup, for the socket (then cached); no user lookups (joined)
    const batch = (loader: string, part: 'sum' | 'count') =>
      sum(metrics, `dataflow_batch_size_${part}`, { dataflow_loader: loader });
    expect([batch('membership', 'count'), batch('membership', 'sum')]).toEqual([1, 1]);
    expect(batch('user', 'count')).toBe(0);
    // the DB layer's own counter between the two scrapes (the change-log poll runs too)
    const [s0, s1, s2, s3] = stats as [number, number, number, number];
    const trips = delta(first, metrics, 'dataflow_db_round_trips_total');
    expect(trips).toBeGreaterThanOrEqual(s2 - s1);
    expect(trips).toBeLessThanOrEqual(s3 - s0);
    expect(s2 - s1).toBeGreaterThanOrEqual(2); // the socket's check and the miss, at least
    // one webhook applied, one change pushed to the one socket
    const applied = { sync_event_type: 'user.updated', sync_outcome: 'applied' };
    expect(sum(metrics, 'sync_webhook_events_total', applied)).toBe(1);
    expect(sum(metrics, 'sync_webhook_apply_duration_count', { sync_outcome: 'applied' })).toBe(1);
    // and the one dead letter
    expect(sum(metrics, 'sync_webhook_events_total', { sync_outcome: 'dead_letter' })).toBe(1);
    expect(sum(metrics, 'sync_dead_letters_total')).toBe(1);
    expect(sum(metrics, 'sync_webhook_lag_count')).toBe(1);
    expect(sum(metrics, 'realtime_delivery_lag_count')).toBe(1);
    expect(sum(metrics, 'realtime_messages_sent_total')).toBe(1);
    expect(sum(metrics, 'realtime_connections')).toBe(1);
    expect(sum(metrics, 'dataflow_breaker_state')).toBe(0);
  });

  it('keeps label cardinality bounded: no ids or raw paths in labels', () => {
    expect(text).not.toContain(cast.orgA.id);
    expect(text).not.toContain(cast.adminA.id);
    expect(text).not.toMatch(/http_route="\/api\/orgs\/org_/);
  });
});
