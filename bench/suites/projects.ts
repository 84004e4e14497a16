import { runLoad, sendOnce } from '../../load/generator.ts';
import { SCENARIOS } from '../../load/scenarios.ts';
import { delta, scrape } from '../prometheus-text.ts';
import type { Figure } from '../results.ts';
import { round2 } from '../stats.ts';
import {
  type BenchSuite,
  checkAborted,
  leverCounts,
  leverFigures,
  openModelFigures,
  percentileFigure,
  type SuiteContext,
  startPresetServers,
  watchGenerator,
} from './context.ts';

/**
 * The mixed read/write scenario (projects: 80% list, 10% create, 10% rename) per
 * preset, closed model then open model. Every write invalidates the org's project
 * reads, so this is where a cache pays its invalidation cost.
 */
export const projectsSuite: BenchSuite = {
  description:
    'projects mixed read/write (80% list, 10% create, 10% rename) per preset: closed then open model; writes invalidate',
  databases: ['file', 'sqld'],
  run: projects,
};

async function projects(ctx: SuiteContext): Promise<Figure[]> {
  const scenario = SCENARIOS['projects-mixed'];
  const closed = scenario.models.find((m) => m.kind === 'closed')!;
  const open = scenario.models.find((m) => m.kind === 'open')!;
  const servers = await startPresetServers(ctx, 'projects', { reuse: 'projects' });
  try {
    const figures: Figure[] = [];
    for (const [preset, server] of servers) {
      checkAborted(ctx);
      const vars = { orgId: ctx.setup.org.id, projectId: '' };
      const created = (await sendOnce(server.url, ctx.setup.auth, scenario.setup!, vars)) as {
        id: string;
      };
      vars.projectId = created.id;
      const common = {
        baseUrl: server.url,
        headers: ctx.setup.auth,
        scenario,
        vars,
        signal: ctx.signal,
      };
      ctx.progress(`projects: ${preset}, closed model, ${ctx.settings.loadSec}s`);
      const route = { http_route: scenario.route };
      const before = await scrape(server.url);
      const c = await runLoad({
        ...common,
        model: { ...closed, connections: ctx.settings.connections },
        durationSec: ctx.settings.loadSec,
        warmupSec: ctx.settings.warmupSec,
      });
      const after = await scrape(server.url);
      checkAborted(ctx);
      watchGenerator(ctx, `projects ${preset}`, c.generatorCpu);
      const routeRequests = delta(before, after, 'http_server_request_duration_count', route);
      const routeQueries = delta(before, after, 'dataflow_db_queries_per_request_sum', route);
      const base = { suite: 'projects', scenario: scenario.description, preset };
      const samples = c.requests;
      const writes =
        (c.perRequest['create project']?.requests ?? 0) +
        (c.perRequest['rename project']?.requests ?? 0);
      figures.push(
        ...leverFigures(base, [leverCounts(preset, before, after)]),
        {
          ...base,
          metric: 'req/s',
          value: Math.round(c.rps),
          unit: 'req/s',
          samples,
          note: `closed model, ${ctx.settings.connections} connections; ${writes} writes`,
        },
        { ...base, metric: 'latency p50', value: round2(c.latencyMs.p50), unit: 'ms', samples },
        {
          ...base,
          metric: 'latency p99',
          unit: 'ms',
          samples,
          histogram: { ...c.latencyMs },
          ...percentileFigure('p99', c.latencyMs.p99, samples),
        },
        { ...base, metric: 'errors', value: c.errors, unit: 'responses', samples },
        {
          ...base,
          metric: 'DB queries per request',
          value: routeRequests > 0 ? round2(routeQueries / routeRequests) : null,
          unit: 'queries',
          samples: routeRequests,
          note: `server-side, ${scenario.route} (list and create)`,
        },
      );
      if (!ctx.settings.projectsOpen) continue;
      ctx.progress(`projects: ${preset}, open model, ${open.rate} req/s, ${ctx.settings.openSec}s`);
      const o = await runLoad({ ...common, model: open, durationSec: ctx.settings.openSec });
      watchGenerator(ctx, `projects ${preset} (open)`, o.generatorCpu);
      figures.push(...openModelFigures(base, o, open.rate));
    }
    return figures;
  } finally {
    await servers.stopAll();
  }
}
