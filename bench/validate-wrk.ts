import { execFile } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import autocannon from 'autocannon';
import { BENCH_DB_URL, benchSetup } from '../load/bench-setup.ts';
import { startAppProcess } from '../load/infra/server-process.ts';
import { requireTool } from '../load/infra/tools.ts';
import { median } from './stats.ts';

/**
 * `make bench-validate`: is our load generator telling the truth? The same endpoint
 * (members page, `recommended` preset, the real app process) is driven by autocannon
 * and by `wrk` (Debian), same connections and duration, in interleaved rounds; the
 * medians of req/s must agree within 15%. Exit 0 agree, 1 disagree, 2 environment.
 */
const run = promisify(execFile);
const TOLERANCE = 0.15;

export interface ValidateOptions {
  rounds: number;
  durationSec: number;
  connections: number;
}

export async function validateAgainstWrk(
  options: ValidateOptions,
  progress: (line: string) => void = () => {},
) {
  const setup = await benchSetup();
  const server = await startAppProcess({
    NODE_ENV: 'production',
    DATABASE_URL: BENCH_DB_URL,
    CLERK_JWT_KEY: setup.keys.publicKey,
    DB_MIGRATE_ON_START: 'false',
    DATAFLOW_PRESET: 'recommended',
    SERVER_TIMING: 'false',
  });
  const url = server.url + setup.membersPath;
  const { connections, durationSec } = options;
  const viaAutocannon = async (seconds: number) =>
    (await autocannon({ url, headers: setup.auth, connections, duration: seconds })).requests
      .average;
  const viaWrk = async (seconds: number) => {
    const { stdout } = await run('wrk', [
      '-t1',
      `-c${connections}`,
      `-d${seconds}s`,
      '-H',
      `authorization: ${setup.auth.authorization}`,
      url,
    ]);
    const match = /Requests\/sec:\s+([\d.]+)/.exec(stdout);
    if (!match) throw new Error(`wrk printed no Requests/sec:\n${stdout}`);
    const non2xx = /Non-2xx or 3xx responses:\s+(\d+)/.exec(stdout);
    if (non2xx) throw new Error(`wrk got ${non2xx[1]} error responses`);
    return Number(match[1]);
  };
  try {
    progress('warm-up');
    await viaAutocannon(2);
    await viaWrk(1);
    const a: number[] = [];
    const w: number[] = [];
    for (let i = 0; i < options.rounds; i++) {
      // alternate who goes first, so a drifting machine favours neither
      const order = i % 2 === 0 ? (['a', 'w'] as const) : (['w', 'a'] as const);
      for (const tool of order) {
        progress(`round ${i + 1}/${options.rounds}: ${tool === 'a' ? 'autocannon' : 'wrk'}`);
        if (tool === 'a') a.push(await viaAutocannon(durationSec));
        else w.push(await viaWrk(durationSec));
      }
    }
    const autocannonRps = median(a);
    const wrkRps = median(w);
    const difference = Math.abs(autocannonRps - wrkRps) / wrkRps;
    return {
      endpoint: 'GET /api/orgs/:orgId/members?limit=50 (recommended preset)',
      ...options,
      autocannonRounds: a.map(Math.round),
      wrkRounds: w.map(Math.round),
      autocannonRps: Math.round(autocannonRps),
      wrkRps: Math.round(wrkRps),
      difference: Math.round(difference * 1000) / 10,
      agree: difference <= TOLERANCE,
    };
  } finally {
    await server.stop();
  }
}

async function main(): Promise<number> {
  try {
    requireTool('wrk');
  } catch (error) {
    console.error(`make bench-validate: environment error: ${(error as Error).message}`);
    return 2;
  }
  const result = await validateAgainstWrk({ rounds: 3, durationSec: 3, connections: 16 }, (line) =>
    console.error(`[validate] ${line}`),
  );
  console.log(
    [
      `endpoint: ${result.endpoint}, ${result.connections} connections, ${result.rounds} interleaved rounds x ${result.durationSec}s`,
      `autocannon req/s: ${result.autocannonRounds.join(', ')} -> median ${result.autocannonRps}`,
      `wrk req/s:        ${result.wrkRounds.join(', ')} -> median ${result.wrkRps}`,
      `difference: ${result.difference}% (tolerance ${TOLERANCE * 100}%): ${result.agree ? 'AGREE' : 'DISAGREE'}`,
    ].join('\n'),
  );
  return result.agree ? 0 : 1;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await main();
}
