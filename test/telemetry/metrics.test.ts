import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { userEvent } from '../../fixtures/clerk/events.ts';
import { generateFixture } from '../../fixtures/seed/generate.ts';
import { loadFixture } from '../../fixtures/seed/load.ts';
import { signedHeaders } from '../../load/webhook-sender.ts';
import { castFrom } from '../support/people.ts';
import { recordingClient, startTestServer, type TestServer, waitFor } from '../support/server.ts';

// After a short run of the real server, /metrics exposes the documented series.
describe('GET /metrics', () => {
  let server: TestServer & { cleanup(): Promise<void> };
  const fixture = generateFixture('small');
  const cast = castFrom(fixture);
  let text = '';

  beforeAll(async () => {
    server = await startTestServer({ DATAFLOW_PRESET: 'recommended' });
    await loadFixture(server.database, fixture);
    const token = await server.token({
      userId: cast.adminA.id,
      orgId: cast.orgA.id,
      role: 'admin',
    });
    const client = recordingClient({ url: server.wsUrl, token: () => token });
    await client.ready();
    for (let i = 0; i < 3; i++) {
      await fetch(`${server.url}/api/orgs/${cast.orgA.id}/members?limit=10`, {
        headers: { authorization: `Bearer ${token}` },
      });
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
    await waitFor(() => client.changes.length > 0, 5000, 'a pushed change');
    text = await (await fetch(`${server.url}/metrics`)).text();
    client.close();
  });
  afterAll(() => server?.cleanup());

  it('exposes request, database, lever, sync and realtime series', () => {
    const expected = [
      /http_server_request_duration_bucket\{[^}]*http_route="\/api\/orgs\/:orgId\/members"[^}]*http_response_status_code="200"/,
      /http_server_active_requests/,
      /dataflow_db_round_trips_total\{[^}]*\} [1-9]/,
      /db_client_operation_duration_bucket\{[^}]*db_query_summary="SELECT users"/,
      /dataflow_db_queries_per_request_bucket\{[^}]*http_route="\/api\/orgs\/:orgId\/members"/,
      /sync_webhook_apply_duration_count\{[^}]*sync_outcome="applied"[^}]*\} 1/,
      /realtime_delivery_lag_count\{[^}]*\} [1-9]/,
      /dataflow_cache_lookups_total\{[^}]*dataflow_cache_result="hit"[^}]*\} [1-9]/,
      /dataflow_cache_lookups_total\{[^}]*dataflow_cache_result="miss"/,
      /dataflow_cache_invalidations_total\{[^}]*dataflow_cache_invalidation="precise"/,
      /dataflow_batch_size_bucket\{[^}]*dataflow_loader="user"/,
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

  it('keeps label cardinality bounded: no ids or raw paths in labels', () => {
    expect(text).not.toContain(cast.orgA.id);
    expect(text).not.toContain(cast.adminA.id);
    expect(text).not.toMatch(/http_route="\/api\/orgs\/org_/);
  });
});
