import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { closedLoad } from '../../load/autocannon.ts';
import { type ServerProcess, startServerProcess } from '../../load/infra/server-process.ts';
import type { Figure } from '../results.ts';
import { median } from '../stats.ts';
import { type BenchSuite, checkAborted, productionEnv, type SuiteContext } from './context.ts';

/**
 * The anchors every HTTP figure stands next to, measured in the same run, interleaved:
 * a bare `node:http` JSON hello, the same on bare Hono (@hono/node-server), and the
 * app's `GET /health` in production mode; then the session-token cache on and off on
 * the members page (`recommended`), the fixed auth cost of every request.
 */
export const foundationSuite: BenchSuite = {
  description:
    'anchors: bare node:http hello, bare Hono, app GET /health (production); members page with the token cache on/off',
  databases: ['file', 'sqld'],
  run: foundation,
};

export const HEALTH_SCENARIO = 'GET /health vs the bare runtime';
export const TOKEN_SCENARIO = 'members page limit=50, session token cache';

interface Target {
  scenario: string;
  metric: string;
  preset: string | null;
  server: ServerProcess;
  path: string;
  headers: Record<string, string>;
}

async function foundation(ctx: SuiteContext): Promise<Figure[]> {
  const { settings, setup } = ctx;
  let dbUrl = ctx.dbUrl;
  if (ctx.options.db === 'file') {
    const dir = mkdtempSync(join(tmpdir(), 'bench-foundation-'));
    ctx.cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    copyFileSync('.data/bench.db', join(dir, 'bench.db'));
    dbUrl = `file:${join(dir, 'bench.db')}`;
  }
  const app = (env: Record<string, string>) =>
    startServerProcess(productionEnv(ctx, { DATABASE_URL: dbUrl, ...env }));
  ctx.progress('foundation: starting the anchors and the app');
  const [node, hono, cacheOn, cacheOff] = await Promise.all([
    startServerProcess({ HELLO: 'node' }, 'load/infra/hello-server.ts'),
    startServerProcess({ HELLO: 'hono' }, 'load/infra/hello-server.ts'),
    app({ DATAFLOW_PRESET: 'recommended', AUTH_TOKEN_CACHE: 'on' }),
    app({ DATAFLOW_PRESET: 'recommended', AUTH_TOKEN_CACHE: 'off' }),
  ]);
  const servers = [node, hono, cacheOn, cacheOff];
  ctx.cleanups.push(async () => {
    await Promise.all(servers.map((s) => s.stop()));
  });
  const targets: Target[] = [
    {
      scenario: HEALTH_SCENARIO,
      metric: 'bare node:http hello',
      preset: null,
      server: node,
      path: '/',
      headers: {},
    },
    {
      scenario: HEALTH_SCENARIO,
      metric: 'bare Hono hello',
      preset: null,
      server: hono,
      path: '/',
      headers: {},
    },
    {
      scenario: HEALTH_SCENARIO,
      metric: 'app GET /health',
      preset: null,
      server: cacheOn,
      path: '/health',
      headers: {},
    },
    {
      scenario: TOKEN_SCENARIO,
      metric: 'token cache on',
      preset: 'recommended',
      server: cacheOn,
      path: setup.membersPath,
      headers: setup.auth,
    },
    {
      scenario: TOKEN_SCENARIO,
      metric: 'token cache off',
      preset: 'recommended',
      server: cacheOff,
      path: setup.membersPath,
      headers: setup.auth,
    },
  ];
  try {
    const rounds = new Map<Target, Array<{ rps: number; requests: number; errors: number }>>();
    for (let round = 1; round <= settings.rounds; round++) {
      for (const target of targets) {
        checkAborted(ctx);
        ctx.progress(`foundation: round ${round}/${settings.rounds}, ${target.metric}`);
        const options = {
          url: target.server.url + target.path,
          headers: target.headers,
          connections: settings.connections,
        };
        if (settings.warmupSec > 0) {
          await closedLoad({ ...options, duration: settings.warmupSec }, ctx.signal);
        }
        const r = await closedLoad({ ...options, duration: settings.loadSec }, ctx.signal);
        rounds.set(target, [
          ...(rounds.get(target) ?? []),
          { rps: r.requests.average, requests: r.requests.total, errors: r.errors + r.non2xx },
        ]);
      }
    }
    checkAborted(ctx);
    const rpsOf = (metric: string) =>
      median((rounds.get(targets.find((t) => t.metric === metric)!) ?? []).map((r) => r.rps));
    const bare = rpsOf('bare node:http hello');
    const figures: Figure[] = [];
    for (const [target, runs] of rounds) {
      const rps = median(runs.map((r) => r.rps));
      const base = {
        suite: 'foundation',
        scenario: target.scenario,
        preset: target.preset,
        samples: runs.reduce((a, r) => a + r.requests, 0),
      };
      figures.push({
        ...base,
        metric: `req/s: ${target.metric}`,
        value: Math.round(rps),
        unit: 'req/s',
        note: `closed model, ${settings.connections} connections, median of ${runs.length}; ${runs.reduce((a, r) => a + r.errors, 0)} errors`,
      });
      if (target.scenario === HEALTH_SCENARIO && target.metric !== 'bare node:http hello') {
        figures.push({
          ...base,
          metric: `${target.metric} ÷ bare node:http`,
          value: Math.round((rps / bare) * 100) / 100,
          unit: 'x',
          note: 'the HTTP overhead anchor: 1.00 is the bare runtime',
        });
      }
    }
    figures.push({
      suite: 'foundation',
      scenario: TOKEN_SCENARIO,
      preset: 'recommended',
      metric: 'token cache on ÷ off',
      value: Math.round((rpsOf('token cache on') / rpsOf('token cache off')) * 100) / 100,
      unit: 'x',
      samples: 0,
      note: 'what skipping the RS256 verify of a token seen before buys',
    });
    return figures;
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
  }
}
