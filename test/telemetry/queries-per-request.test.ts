import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePrometheusText, sum } from '../../bench/prometheus-text.ts';
import { generateFixture } from '../../fixtures/seed/generate.ts';
import { loadFixture } from '../../fixtures/seed/load.ts';
import { castFrom } from '../support/people.ts';
import { asyncContextCarries, startTestServer } from '../support/server.ts';

const fixture = generateFixture('small');
const cast = castFrom(fixture);
const LIMITS = [1, 3, 5, 8, 2, 13, 4, 6];

/**
 * The production default: metrics on, no traces, no Server-Timing. No async context is
 * registered then (on Node 20 it taxes every promise), and each request's queries are
 * still counted exactly, through the request's own database handle, also when
 * concurrent requests share the batching lever's batches.
 */
describe('queries per request without an async context (metrics only)', () => {
  for (const preset of ['baseline', 'batch'] as const) {
    describe(preset, () => {
      let server: Awaited<ReturnType<typeof startTestServer>>;
      beforeAll(async () => {
        // no safety-net poll of the change log during the test: every round trip is a request's
        server = await startTestServer({
          DATAFLOW_PRESET: preset,
          SERVER_TIMING: 'false',
          CHANGE_POLL_MS: '600000',
        });
        await loadFixture(server.database, fixture);
      });
      afterAll(() => server?.cleanup());

      it('registers no context manager: a value set before an await is gone after it', async () => {
        expect(await asyncContextCarries()).toBe(false);
      });

      it('counts every round trip once, charged to the requests that made them', async () => {
        const token = await server.token({
          userId: cast.adminA.id,
          orgId: cast.orgA.id,
          role: 'admin',
        });
        const scrape = async () =>
          parsePrometheusText(await (await fetch(`${server.url}/metrics`)).text());
        const route = { http_route: '/api/orgs/:orgId/members' };
        const page = (limit: number) =>
          fetch(`${server.url}/api/orgs/${cast.orgA.id}/members?limit=${limit}`, {
            headers: { authorization: `Bearer ${token}` },
          }).then(async (res) => {
            await res.arrayBuffer();
            return res.status;
          });
        expect(await page(1)).toBe(200); // the route's series exists from here on
        const before = sum(await scrape(), 'dataflow_db_queries_per_request_sum', route);
        const tripsBefore = server.database.stats().roundTrips;
        const statuses = await Promise.all(LIMITS.map(page));
        expect(statuses.every((s) => s === 200)).toBe(true);
        const trips = server.database.stats().roundTrips - tripsBefore;
        const counted = sum(await scrape(), 'dataflow_db_queries_per_request_sum', route) - before;
        expect(counted).toBe(trips);
        if (preset === 'baseline') {
          // the N+1: the membership check, the page, one lookup per member
          expect(counted).toBe(LIMITS.reduce((total, limit) => total + limit + 2, 0));
        } else {
          // shared batches: fewer round trips than requests x 2
          expect(counted).toBeLessThanOrEqual(LIMITS.length * 2);
          expect(counted).toBeGreaterThan(0);
        }
      });
    });
  }
});
