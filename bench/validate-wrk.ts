import { execFile } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import autocannon from 'autocannon';
import { BENCH_DB_URL, benchSetup } from '../load/bench-setup.ts';
import {
  type ServerProcess,
  startAppProcess,
  startBundledProcess,
} from '../load/infra/server-process.ts';
import { requireTool } from '../load/infra/tools.ts';
import { median, pairedBootstrapRatio, round2 } from './stats.ts';

/**
 * `make bench-validate`: is our load generator telling the truth? Two checks, each
 * driven by autocannon (what the suites use) and by `wrk` (Debian, in C), same
 * connections and duration, in interleaved rounds:
 *
 * - one endpoint (members page, `recommended` preset, the real app process): its req/s;
 * - one pair of the overhead suite: the app's `GET /health` and its members cache hit,
 *   each against a bare `node:http` hello (the suite's anchor). On two cores the
 *   generator shares the machine with the server, and a generator that limits the bare
 *   hello more than the app would flatter the app's ratio: the ratios from the two
 *   tools are compared. The server's CPU per request is shown beside them: it does not
 *   depend on the tool.
 *
 * The two tools' figures, paired round by round, must not be told apart beyond 15%: the
 * 95% interval of one over the other reaches into 0.85-1.15 (on this shared two-core
 * host one round differs from the next by more than that, so medians alone flip).
 *
 * Exit 0 all agree, 1 a disagreement, 2 environment.
 */
const run = promisify(execFile);
const TOLERANCE = 0.15;

export interface ValidateOptions {
  rounds: number;
  durationSec: number;
  connections: number;
}

type Tool = 'autocannon' | 'wrk';
const TOOLS: readonly Tool[] = ['autocannon', 'wrk'];

interface Target {
  name: string;
  server: ServerProcess;
  path: string;
  headers: Record<string, string>;
}

interface Round {
  rps: number;
  cpuUsPerRequest: number;
}

/** How far `a` is from `b`, as a share of `b`; within the tolerance or not. */
/**
 * Autocannon's figures over wrk's, paired round by round (one round's host speed cancels
 * out): they disagree only when the 95% interval lies wholly beyond the tolerance.
 */
export function agreement(byWrk: readonly number[], byAutocannon: readonly number[]) {
  const estimate = pairedBootstrapRatio(byWrk, byAutocannon);
  return {
    autocannonOverWrk: {
      ratio: round2(estimate.ratio),
      low: round2(estimate.low),
      high: round2(estimate.high),
    },
    agree: estimate.low <= 1 + TOLERANCE && estimate.high >= 1 - TOLERANCE,
  };
}

export async function validateAgainstWrk(
  options: ValidateOptions,
  progress: (line: string) => void = () => {},
) {
  const setup = await benchSetup();
  const [app, hello] = await Promise.all([
    startAppProcess({
      NODE_ENV: 'production',
      DATABASE_URL: BENCH_DB_URL,
      CLERK_JWT_KEY: setup.keys.publicKey,
      DB_MIGRATE_ON_START: 'false',
      DATAFLOW_PRESET: 'recommended',
      SERVER_TIMING: 'false',
    }),
    startBundledProcess('load/infra/hello-server.ts', { HELLO: 'node' }),
  ]);
  const targets: Target[] = [
    { name: 'bare node:http hello', server: hello, path: '/', headers: {} },
    { name: 'app GET /health', server: app, path: '/health', headers: {} },
    { name: 'members page, cache hit', server: app, path: setup.membersPath, headers: setup.auth },
  ];
  const [anchor, ...appTargets] = targets as [Target, ...Target[]];
  const members = targets[2]!;
  const { connections, durationSec } = options;

  /** req/s and requests completed */
  type Measured = [rps: number, requests: number];
  const requestsBy: Record<Tool, (target: Target, seconds: number) => Promise<Measured>> = {
    async autocannon(target, seconds) {
      const result = await autocannon({
        url: target.server.url + target.path,
        headers: target.headers,
        connections,
        duration: seconds,
      });
      return [result.requests.average, result.requests.total];
    },
    async wrk(target, seconds) {
      const headers = Object.entries(target.headers).flatMap(([k, v]) => ['-H', `${k}: ${v}`]);
      const { stdout } = await run('wrk', [
        '-t1',
        `-c${connections}`,
        `-d${seconds}s`,
        ...headers,
        target.server.url + target.path,
      ]);
      const rps = /Requests\/sec:\s+([\d.]+)/.exec(stdout);
      const total = /(\d+) requests in/.exec(stdout);
      if (!rps || !total) throw new Error(`wrk printed no Requests/sec:\n${stdout}`);
      const non2xx = /Non-2xx or 3xx responses:\s+(\d+)/.exec(stdout);
      if (non2xx) throw new Error(`wrk got ${non2xx[1]} error responses from ${target.name}`);
      return [Number(rps[1]), Number(total[1])];
    },
  };
  const measure = async (tool: Tool, target: Target, seconds: number): Promise<Round> => {
    const cpuBefore = target.server.cpuMs();
    const [rps, requests] = await requestsBy[tool](target, seconds);
    return { rps, cpuUsPerRequest: ((target.server.cpuMs() - cpuBefore) * 1000) / requests };
  };

  try {
    // the app's first seconds run several times its steady CPU per request
    progress('warm-up');
    for (const target of targets) {
      await measure('autocannon', target, target.server === app ? 3 : 1);
      await measure('wrk', target, 1);
    }
    const rounds = new Map<string, Round[]>();
    for (let i = 0; i < options.rounds; i++) {
      // every other round backwards, tools and targets alike: a drifting machine favours neither
      const tools = i % 2 === 0 ? TOOLS : [...TOOLS].reverse();
      const order = i % 2 === 0 ? targets : [...targets].reverse();
      for (const target of order) {
        for (const tool of tools) {
          progress(`round ${i + 1}/${options.rounds}: ${target.name}, ${tool}`);
          const key = `${tool} ${target.name}`;
          rounds.set(key, [...(rounds.get(key) ?? []), await measure(tool, target, durationSec)]);
        }
      }
    }
    const of = (tool: Tool, target: Target) => rounds.get(`${tool} ${target.name}`)!;
    const rpsOf = (tool: Tool, target: Target) => of(tool, target).map((r) => r.rps);

    const autocannonRps = median(rpsOf('autocannon', members));
    const wrkRps = median(rpsOf('wrk', members));
    const pairs = appTargets.map((target) => {
      const ratiosBy = (tool: Tool) => {
        const anchorRps = rpsOf(tool, anchor);
        return rpsOf(tool, target).map((rps, i) => rps / anchorRps[i]!);
      };
      // the bare hello's CPU per request over the app's, both tools' rounds together
      const cpu = pairedBootstrapRatio(
        TOOLS.flatMap((tool) => of(tool, target).map((r) => r.cpuUsPerRequest)),
        TOOLS.flatMap((tool) => of(tool, anchor).map((r) => r.cpuUsPerRequest)),
      );
      return {
        target: target.name,
        ratioByAutocannon: round2(median(ratiosBy('autocannon'))),
        ratioByWrk: round2(median(ratiosBy('wrk'))),
        ratioByCpu: round2(cpu.ratio),
        ...agreement(ratiosBy('wrk'), ratiosBy('autocannon')),
      };
    });
    const endpoint = agreement(rpsOf('wrk', members), rpsOf('autocannon', members));
    return {
      endpoint: 'GET /api/orgs/:orgId/members?limit=50 (recommended preset)',
      ...options,
      autocannonRounds: rpsOf('autocannon', members).map(Math.round),
      wrkRounds: rpsOf('wrk', members).map(Math.round),
      autocannonRps: Math.round(autocannonRps),
      wrkRps: Math.round(wrkRps),
      autocannonOverWrk: endpoint.autocannonOverWrk,
      agree: endpoint.agree && pairs.every((p) => p.agree),
      endpointAgrees: endpoint.agree,
      anchor: {
        name: anchor.name,
        autocannonRps: Math.round(median(rpsOf('autocannon', anchor))),
        wrkRps: Math.round(median(rpsOf('wrk', anchor))),
      },
      pairs,
    };
  } finally {
    await Promise.all([app.stop(), hello.stop()]);
  }
}

async function main(): Promise<number> {
  try {
    requireTool('wrk');
  } catch (error) {
    console.error(`make bench-validate: environment error: ${(error as Error).message}`);
    return 2;
  }
  const result = await validateAgainstWrk({ rounds: 6, durationSec: 2, connections: 16 }, (line) =>
    console.error(`[validate] ${line}`),
  );
  const verdict = (agree: boolean) => (agree ? 'AGREE' : 'DISAGREE');
  const interval = (e: { ratio: number; low: number; high: number }) =>
    `${e.ratio} (95% interval ${e.low}-${e.high}, tolerance ±${TOLERANCE * 100}%)`;
  console.log(
    [
      `${result.connections} connections, ${result.rounds} interleaved rounds x ${result.durationSec}s per tool and target`,
      `endpoint: ${result.endpoint}`,
      `  autocannon req/s: ${result.autocannonRounds.join(', ')} -> median ${result.autocannonRps}`,
      `  wrk req/s:        ${result.wrkRounds.join(', ')} -> median ${result.wrkRps}`,
      `  autocannon's ÷ wrk's ${interval(result.autocannonOverWrk)}: ${verdict(result.endpointAgrees)}`,
      `pair: each app target ÷ the ${result.anchor.name} (autocannon ${result.anchor.autocannonRps} req/s, wrk ${result.anchor.wrkRps})`,
      ...result.pairs.map(
        (p) =>
          `  ${p.target}: ${p.ratioByAutocannon}x by autocannon, ${p.ratioByWrk}x by wrk; autocannon's ÷ wrk's ${interval(p.autocannonOverWrk)}: ${verdict(p.agree)}; ${p.ratioByCpu}x from the server's CPU per request`,
      ),
    ].join('\n'),
  );
  return result.agree ? 0 : 1;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await main();
}
