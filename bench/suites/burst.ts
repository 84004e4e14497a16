import { runLoad } from '../../load/generator.ts';
import { SCENARIOS } from '../../load/scenarios.ts';
import { delta, type Samples, scrape } from '../prometheus-text.ts';
import type { Figure } from '../results.ts';
import { type BenchSuite, checkAborted, type SuiteContext, startPresetServers } from './context.ts';

/**
 * The cold burst: N identical members requests at once against a fresh app process
 * per preset (cold caches, over HTTP), on the remote database (sqld behind the RTT
 * relay), where a query takes a network round trip and identical requests overlap:
 * the situation coalescing is for. With DB=file (full and smoke profiles) the same
 * burst on the embedded database follows as a second figure: there a query takes
 * microseconds, the requests barely overlap, and coalescing has little to merge.
 *
 * Handler executions: requests whose handler did its DB work, i.e. requests minus
 * coalescing followers minus cache hits (from the app's `/metrics`). DB statements: the
 * route's own per-request query counts summed (exact).
 */
export const burstSuite: BenchSuite = {
  description:
    'cold burst: N identical members requests at once against a fresh process per preset, on sqld behind the RTT relay (and embedded): handler executions and DB statements',
  databases: ['file', 'sqld'],
  run: async (ctx) => {
    const remote = await ctx.remoteDb();
    const figures = await burst(ctx, 'remote', `sqld, RTT ${remote.rttMs} ms`);
    if (ctx.options.db === 'file' && ctx.settings.burstEmbedded)
      figures.push(...(await burst(ctx, 'run', 'embedded')));
    return figures;
  },
};

export const BURST = 'cold burst of identical requests';

async function burst(ctx: SuiteContext, db: 'remote' | 'run', label: string): Promise<Figure[]> {
  const scenario = SCENARIOS['cold-burst'];
  const requests = ctx.settings.burstRequests;
  const servers = await startPresetServers(ctx, `burst (${label})`, { db });
  try {
    const figures: Figure[] = [];
    const route = { http_route: scenario.route };
    for (const [preset, server] of servers) {
      checkAborted(ctx);
      ctx.progress(`burst: ${requests} identical requests, ${preset}, ${label}`);
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
      const statements = delta(before, after, 'dataflow_db_queries_per_request_sum', route);
      const served = delta(before, after, 'dataflow_db_queries_per_request_count', route);
      const followers = present(after, 'dataflow_coalesce_requests_total')
        ? delta(before, after, 'dataflow_coalesce_requests_total', {
            ...route,
            dataflow_coalesce_role: 'follower',
          })
        : 0;
      const hits = present(after, 'dataflow_cache_lookups_total')
        ? delta(before, after, 'dataflow_cache_lookups_total', { dataflow_cache_result: 'hit' })
        : 0;
      const base = {
        suite: 'burst',
        scenario: db === 'remote' ? BURST : `${BURST} (embedded)`,
        preset,
      };
      const note = `${requests} concurrent identical members requests over HTTP, fresh process, ${label}`;
      figures.push(
        {
          ...base,
          metric: 'handler executions per burst',
          value: served - followers - hits,
          unit: 'executions',
          samples: result.requests,
          note: `${note}; ${served} served, ${followers} coalesced followers, ${hits} cache hits`,
        },
        {
          ...base,
          metric: 'DB statements per burst',
          value: statements,
          unit: 'queries',
          samples: result.requests,
          note: `${note}; exact, from the route's query counts`,
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

/** A series the app exports only once its instrument recorded something. */
const present = (scrape: Samples, name: string) => scrape.names.has(name);
