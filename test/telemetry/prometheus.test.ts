import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateFixture } from '../../fixtures/seed/generate.ts';
import { loadFixture } from '../../fixtures/seed/load.ts';
import { type PrometheusServer, startPrometheus } from '../../load/infra/prometheus.ts';
import { castFrom } from '../support/people.ts';
import { startTestServer, type TestServer, waitFor } from '../support/server.ts';

// A real Prometheus scrapes the real app; PromQL over our series returns numbers.
describe('Prometheus scraping /metrics', () => {
  let server: TestServer & { cleanup(): Promise<void> };
  let prometheus: PrometheusServer;

  beforeAll(async () => {
    server = await startTestServer({ DATAFLOW_PRESET: 'recommended' });
    const fixture = generateFixture('small');
    await loadFixture(server.database, fixture);
    const cast = castFrom(fixture);
    prometheus = await startPrometheus([new URL(server.url).host]);
    // Prometheus applies discovered targets after a few seconds: wait for the first scrape
    await waitFor(
      async () => (await prometheus.query('up{job="dataflow"}')) === 1,
      30_000,
      'the first scrape',
    );
    const token = await server.token({ userId: cast.adminA.id, orgId: cast.orgA.id });
    // a few seconds of traffic, bounded in count and time
    const until = Date.now() + 3000;
    while (Date.now() < until) {
      await fetch(`${server.url}/api/orgs/${cast.orgA.id}/members?limit=10`, {
        headers: { authorization: `Bearer ${token}` },
      });
      await new Promise((r) => setTimeout(r, 20));
    }
  }, 60_000);
  afterAll(async () => {
    await prometheus?.stop();
    await server?.cleanup();
  });

  it('rate() and histogram_quantile() over the app series return numbers', async () => {
    const rate =
      'sum(rate(http_server_request_duration_count{http_route="/api/orgs/:orgId/members"}[10s]))';
    await waitFor(
      async () => (await prometheus.query(rate)) > 0,
      20_000,
      'a non-zero request rate',
    );
    const p99 = await prometheus.query(
      'histogram_quantile(0.99, sum by (le) (rate(http_server_request_duration_bucket{http_route="/api/orgs/:orgId/members"}[10s])))',
    );
    expect(Number.isFinite(p99)).toBe(true);
    expect(p99).toBeGreaterThan(0);
    expect(p99).toBeLessThan(10);
    const hits = await prometheus.query(
      'sum(dataflow_cache_lookups_total{dataflow_cache_result="hit"})',
    );
    expect(hits).toBeGreaterThan(0);
    const trips = await prometheus.query('sum(rate(dataflow_db_round_trips_total[10s]))');
    expect(Number.isFinite(trips)).toBe(true);
  });
});
