import { createClient } from '@libsql/client';
import { closedLoad } from '../../load/autocannon.ts';
import { runLoad } from '../../load/generator.ts';
import { SCENARIOS } from '../../load/scenarios.ts';
import { delta, scrape, sum } from '../prometheus-text.ts';
import type { Figure } from '../results.ts';
import { median } from '../stats.ts';
import {
  type BenchSuite,
  checkAborted,
  type LeverCounts,
  leverCounts,
  leverFigures,
  openModelFigures,
  percentileFigure,
  releasePresetServers,
  type SuiteContext,
  startPresetServers,
  watchGenerator,
} from './context.ts';

export const MEMBERS = 'members page limit=50';
/** The same page on the remote database (sqld behind the RTT relay). */
export const MEMBERS_REMOTE = 'members page limit=50, remote DB';

/**
 * The members page (read-heavy, the audit's N+1 example) per preset: closed-model
 * rounds interleaved across presets (autocannon, cross-checked against wrk by
 * `make bench-validate`), server-side figures from each app's `/metrics`, then one
 * open-model run per preset with coordinated-omission-corrected latency.
 */
export const membersSuite: BenchSuite = {
  description:
    'members page (limit 50) per preset: closed-model req/s and latency, DB queries per request, lever figures from /metrics, open model',
  databases: ['file', 'sqld'],
  run: async (ctx) => {
    const figures = await members(ctx);
    // the round-trip finding is about a database a network hop away: with DB=file,
    // measure the page there too (baseline and the preset the finding is judged on)
    if (ctx.options.db === 'file') figures.push(...(await membersRemote(ctx)));
    return figures;
  },
};

async function membersRemote(ctx: SuiteContext): Promise<Figure[]> {
  const { settings, setup, signal } = ctx;
  const presets = ctx.options.presets.filter((p) => p === 'baseline' || p === 'batch');
  const remote = await ctx.remoteDb();
  const servers = await startPresetServers(ctx, 'members (remote DB)', { presets, db: 'remote' });
  try {
    // the physics of a page: one query's round trip, through the relay and to sqld alone
    ctx.progress(
      remote.rttMs > 0
        ? `members: one query's round trip, sqld with and without the ${remote.rttMs} ms relay`
        : "members: one query's round trip to sqld",
    );
    const figures: Figure[] = [];
    // RTT=0: no relay, the two would be the same
    if (remote.url !== remote.sqldUrl) {
      figures.push(
        await roundTripFigure(remote.url, `through the ${remote.rttMs} ms relay`, setup.admin.id),
      );
    }
    figures.push(await roundTripFigure(remote.sqldUrl, 'sqld alone (no relay)', setup.admin.id));
    // a baseline page is 52 round trips: seconds per request over the relay, so the window
    // is long enough for a few dozen of them (about 30 in 3 s), counted as completed ÷ elapsed
    const durationSec = Math.max(settings.loadSec, 3);
    for (const [preset, server] of servers) {
      checkAborted(ctx);
      ctx.progress(`members: ${preset}, sqld RTT ${remote.rttMs} ms, ${durationSec}s`);
      const result = await runLoad({
        baseUrl: server.url,
        headers: setup.auth,
        scenario: SCENARIOS.members,
        vars: { orgId: setup.org.id },
        model: { kind: 'closed', connections: settings.connections },
        durationSec,
        warmupSec: 0.5,
        signal,
      });
      const base = { suite: 'members', scenario: MEMBERS_REMOTE, preset, samples: result.requests };
      const note = `sqld behind a ${remote.rttMs} ms relay, closed model, ${settings.connections} connections, ${durationSec} s`;
      figures.push(
        {
          ...base,
          metric: 'req/s',
          value: Math.round(result.rps * 10) / 10,
          unit: 'req/s',
          note: `${note}; ${result.requests} completed`,
        },
        { ...base, metric: 'latency p50', value: result.latencyMs.p50, unit: 'ms', note },
        { ...base, metric: 'errors', value: result.errors, unit: 'responses' },
      );
    }
    return figures;
  } finally {
    await releasePresetServers(ctx, servers, 'projects', 'members');
  }
}

/** Queries per round-trip figure: enough for a p50, about a second at 10-30 ms each. */
const ROUND_TRIPS = 40;

/**
 * One indexed row through `@libsql/client`, query after query: the round trip every query
 * of a page pays. A baseline page is 52 of them one after the other; a batched page, 2.
 */
async function roundTripFigure(url: string, where: string, userId: string): Promise<Figure> {
  const client = createClient({ url });
  try {
    const lookup = { sql: 'SELECT id, email FROM users WHERE id = ?', args: [userId] };
    await client.execute(lookup); // the connection and the server's first statement
    const ms: number[] = [];
    for (let i = 0; i < ROUND_TRIPS; i++) {
      const started = performance.now();
      await client.execute(lookup);
      ms.push(performance.now() - started);
    }
    return {
      suite: 'members',
      scenario: MEMBERS_REMOTE,
      preset: null,
      metric: `query round trip p50: ${where}`,
      value: Math.round(median(ms) * 100) / 100,
      unit: 'ms',
      samples: ROUND_TRIPS,
      note: `one indexed row through @libsql/client, ${ROUND_TRIPS} back to back, in this run`,
    };
  } finally {
    client.close();
  }
}

async function members(ctx: SuiteContext): Promise<Figure[]> {
  const { settings, setup, signal, progress } = ctx;
  const servers = await startPresetServers(ctx, 'members');
  try {
    const figures: Figure[] = [];
    const perPreset = new Map<
      string,
      Array<{
        rps: number;
        queries: number;
        p50: number;
        p99: number;
        samples: number;
        errors: number;
        rss: number;
        hist: Record<string, number>;
        generatorCpu: number;
        levers: LeverCounts;
      }>
    >();
    for (let round = 1; round <= settings.rounds; round++) {
      // warm-up (JIT, pools, caches), every preset at once: nothing is recorded
      if (settings.warmupSec > 0) {
        checkAborted(ctx);
        progress(`members: round ${round}/${settings.rounds}, warm-up, every preset at once`);
        await Promise.all(
          [...servers.values()].map((server) =>
            closedLoad(
              {
                url: server.url + setup.membersPath,
                headers: setup.auth,
                connections: settings.connections,
                duration: settings.warmupSec,
              },
              signal,
            ),
          ),
        );
      }
      for (const [preset, server] of servers) {
        checkAborted(ctx);
        progress(`members: round ${round}/${settings.rounds}, ${preset}, ${settings.loadSec}s`);
        const url = server.url + setup.membersPath;
        const before = await scrape(server.url);
        const cpuBefore = process.cpuUsage();
        const wallBefore = performance.now();
        const result = await closedLoad(
          {
            url,
            headers: setup.auth,
            connections: settings.connections,
            duration: settings.loadSec,
          },
          signal,
        );
        const cpu = process.cpuUsage(cpuBefore);
        const generatorCpu = (cpu.user + cpu.system) / 1000 / (performance.now() - wallBefore);
        const after = await scrape(server.url);
        const route = { http_route: '/api/orgs/:orgId/members' };
        const requests = delta(before, after, 'http_server_request_duration_count', route);
        // per-request counts from the app's own histogram (the change-log poll is not a request)
        const trips = delta(before, after, 'dataflow_db_queries_per_request_sum', route);
        const list = perPreset.get(preset) ?? [];
        list.push({
          rps: result.requests.average,
          queries: requests > 0 ? trips / requests : 0,
          p50: result.latency.p50,
          p99: result.latency.p99,
          samples: result.requests.total,
          errors: result.errors + result.timeouts + result.non2xx,
          rss: sum(after, 'process_memory_rss') / 2 ** 20,
          hist: {
            p50: result.latency.p50,
            p90: result.latency.p90,
            p99: result.latency.p99,
            max: result.latency.max,
          },
          generatorCpu,
          levers: leverCounts(preset, before, after),
        });
        perPreset.set(preset, list);
        watchGenerator(ctx, `members ${preset}`, generatorCpu);
      }
    }
    for (const [preset, runs] of perPreset) {
      const samples = runs.reduce((a, r) => a + r.samples, 0);
      const base = { suite: 'members', scenario: MEMBERS, preset, samples };
      const rps = median(runs.map((r) => r.rps));
      const queries = median(runs.map((r) => r.queries));
      figures.push(
        {
          ...base,
          metric: 'req/s',
          value: Math.round(rps),
          unit: 'req/s',
          note: `closed model, ${settings.connections} connections, median of ${runs.length}`,
        },
        {
          ...base,
          metric: 'DB queries per request',
          value: Math.round(queries * 100) / 100,
          unit: 'queries',
          note: 'server-side: dataflow.db.queries_per_request of the route',
        },
        {
          ...base,
          metric: 'DB round trips/s',
          value: Math.round(rps * queries),
          unit: 'round trips/s',
        },
        {
          ...base,
          metric: 'latency p50',
          value: median(runs.map((r) => r.p50)),
          unit: 'ms',
          histogram: runs.at(-1)!.hist,
        },
        {
          ...base,
          metric: 'latency p99',
          unit: 'ms',
          ...percentileFigure('p99', median(runs.map((r) => r.p99)), samples),
        },
        {
          ...base,
          metric: 'errors',
          value: runs.reduce((a, r) => a + r.errors, 0),
          unit: 'responses',
        },
        {
          ...base,
          metric: 'server RSS after load',
          value: Math.round(median(runs.map((r) => r.rss))),
          unit: 'MiB',
        },
        ...leverFigures(
          base,
          runs.map((r) => r.levers),
        ),
      );
    }
    const open = SCENARIOS.members.models.find((m) => m.kind === 'open')!;
    for (const [preset, server] of servers) {
      checkAborted(ctx);
      progress(`members: ${preset}, open model, ${open.rate} req/s, ${settings.openSec}s`);
      const result = await runLoad({
        baseUrl: server.url,
        headers: setup.auth,
        scenario: SCENARIOS.members,
        vars: { orgId: setup.org.id },
        model: open,
        durationSec: settings.openSec,
        signal,
      });
      checkAborted(ctx);
      watchGenerator(ctx, `members ${preset} (open)`, result.generatorCpu);
      figures.push(
        ...openModelFigures({ suite: 'members', scenario: MEMBERS, preset }, result, open.rate),
      );
    }
    return figures;
  } finally {
    await servers.stopAll();
  }
}
