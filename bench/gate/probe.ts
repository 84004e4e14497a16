import { sendOnce } from '../../load/generator.ts';
import { SCENARIOS, type ScenarioVars } from '../../load/scenarios.ts';
import type { Budget, DeterministicMetric } from '../budgets.ts';
import { scrape, sum } from '../prometheus-text.ts';
import type { SeededFixture } from './seeded-db.ts';

/**
 * The deterministic figures of one fresh server, in a fixed order: the dashboard page
 * through `/api/batch` (cold), then the scenario's main read twice (cold, warm).
 * Counts come from the app's own per-request histogram, so background work (the
 * change-log poll) is not counted.
 */
export async function probe(
  budget: Budget,
  url: string,
  setup: SeededFixture['setup'],
  vars: ScenarioVars,
): Promise<Partial<Record<DeterministicMetric, number>>> {
  const scenario = SCENARIOS[budget.scenario];
  if (scenario.setup) {
    const created = (await sendOnce(url, setup.auth, scenario.setup, vars)) as { id: string };
    vars.projectId = created.id;
  }
  const queries = async (fn: () => Promise<void>, route?: string) => {
    const where: Record<string, string> = route ? { http_route: route } : {};
    const before = sum(await scrape(url), 'dataflow_db_queries_per_request_sum', where);
    await fn();
    return sum(await scrape(url), 'dataflow_db_queries_per_request_sum', where) - before;
  };
  const out: Partial<Record<DeterministicMetric, number>> = {};
  if (budget.deterministic.pageRoundTrips !== undefined) {
    out.page_round_trips = await queries(async () => {
      await sendOnce(
        url,
        setup.auth,
        {
          name: 'dashboard page',
          method: 'POST',
          path: '/api/batch',
          body: {
            requests: [
              { id: 'me', method: 'GET', path: '/api/me' },
              { id: 'members', method: 'GET', path: `/api/orgs/${vars.orgId}/members?limit=20` },
              { id: 'projects', method: 'GET', path: `/api/orgs/${vars.orgId}/projects?limit=20` },
            ],
          },
          expect: 200,
        },
        vars,
      );
    });
  }
  const main = scenario.requests[0]!;
  let bytes = 0;
  out.queries_cold = await queries(async () => {
    bytes = JSON.stringify(await sendOnce(url, setup.auth, main, vars)).length;
  }, scenario.route);
  out.queries_warm = await queries(async () => {
    await sendOnce(url, setup.auth, main, vars);
  }, scenario.route);
  out.response_bytes = bytes;
  return out;
}
