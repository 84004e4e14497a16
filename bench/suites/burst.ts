import { runLoad } from '../../load/generator.ts';
import { SCENARIOS } from '../../load/scenarios.ts';
import { delta, scrape } from '../prometheus-text.ts';
import type { Figure } from '../results.ts';
import { type BenchSuite, checkAborted, type SuiteContext, startPresetServers } from './context.ts';

/**
 * The cold burst: N identical members requests at once against a fresh app process
 * per preset (cold caches, over HTTP). DB executions are exact: the sum of the route's
 * own per-request query counts, read from `/metrics` before and after.
 */
export const burstSuite: BenchSuite = {
  description:
    'cold burst: N identical members requests at once against a fresh process per preset; exact DB executions',
  databases: ['file', 'sqld'],
  run: burst,
};

async function burst(ctx: SuiteContext): Promise<Figure[]> {
  const scenario = SCENARIOS['cold-burst'];
  const requests = ctx.settings.burstRequests;
  const servers = await startPresetServers(ctx, 'burst');
  try {
    const figures: Figure[] = [];
    const route = { http_route: scenario.route };
    for (const [preset, server] of servers) {
      checkAborted(ctx);
      ctx.progress(`burst: ${requests} identical requests, ${preset}`);
      // the session token verified once (as a signed-in user's first call would), so the
      // burst measures the data path, not RS256
      await fetch(`${server.url}/api/me`, { headers: ctx.setup.auth });
      const before = await scrape(server.url);
      const result = await runLoad({
        baseUrl: server.url,
        headers: ctx.setup.auth,
        scenario,
        vars: { orgId: ctx.setup.org.id },
        model: { kind: 'burst', requests },
        durationSec: 0,
        signal: ctx.signal,
      });
      const after = await scrape(server.url);
      const executions = delta(before, after, 'dataflow_db_queries_per_request_sum', route);
      const base = { suite: 'burst', scenario: 'cold burst of identical requests', preset };
      figures.push(
        {
          ...base,
          metric: 'DB executions per burst',
          value: executions,
          unit: 'queries',
          samples: result.requests,
          note: `${requests} concurrent identical members requests over HTTP, fresh process; exact, from the route's query counts`,
        },
        {
          ...base,
          metric: 'errors',
          value: result.errors,
          unit: 'responses',
          samples: result.requests,
        },
        {
          ...base,
          metric: 'burst completion',
          value: Math.round(result.latencyMs.max * 10) / 10,
          unit: 'ms',
          samples: result.requests,
          note: 'until the last answer, from the moment the burst was sent',
        },
      );
    }
    return figures;
  } finally {
    await servers.stopAll();
  }
}
