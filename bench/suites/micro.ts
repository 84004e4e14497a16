import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { bundled } from '../../load/infra/server-process.ts';
import type { Figure } from '../results.ts';
import type { BenchSuite, SuiteContext } from './context.ts';

/**
 * tinybench microbenchmarks over the real embedded bench database: the fixed costs on
 * the hot path (session verify with and without the token cache, svix verify, drizzle vs
 * raw libSQL for one row) and the batching matrix (maxBatchSize x waitTime x
 * retryStrategy, loading one members page of users). The tasks run from their bundle in
 * a process of their own (`load/infra/micro-probe.ts`), so they time the code as
 * deployed, not as `tsx` rewrites it.
 */
export const microSuite: BenchSuite = {
  description:
    'tinybench: session verify (token cache on/off), svix verify, drizzle vs raw libSQL for one row, the batching matrix',
  databases: ['file'],
  run: async (ctx) => {
    const { fixture, org, keys } = ctx.setup;
    const members = fixture.memberships.filter((m) => m.orgId === org.id).map((m) => m.userId);
    const tasks = await runProbe(ctx, {
      DB_URL: ctx.dbUrl,
      ORG_ID: org.id,
      USER_IDS: members.slice(0, 50).join(','),
      TIME_MS: String(ctx.settings.microTimeMs),
      PUBLIC_KEY: keys.publicKey,
      PRIVATE_KEY: keys.privateKey,
      WEBHOOK_SECRET: ctx.webhookSecret,
    });
    return tasks.map((task): Figure => {
      const [group, name] = task.name.split(': ');
      return {
        suite: 'micro',
        scenario: group!,
        preset: null,
        metric: `${name} mean`,
        value: round(task.meanMs * 1000),
        unit: 'us',
        samples: task.samples,
        note: `p99 ${round(task.p99Ms * 1000)} us, rme ${round(task.rme)}%, from the bundle`,
      };
    });
  },
};

interface ProbeTask {
  name: string;
  meanMs: number;
  p99Ms: number;
  rme: number;
  samples: number;
}

/** Runs the probe's bundle; its stderr lines are progress, its stdout the tasks' JSON. */
async function runProbe(ctx: SuiteContext, env: Record<string, string>): Promise<ProbeTask[]> {
  const child = spawn(process.execPath, [await bundled('load/infra/micro-probe.ts')], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    signal: ctx.signal,
  });
  let stdout = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
  });
  const stderr: string[] = [];
  createInterface({ input: child.stderr }).on('line', (line) => {
    stderr.push(line);
    ctx.progress(`micro: ${line}`);
  });
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', resolve);
  });
  if (code !== 0) {
    throw new Error(`micro probe exited with ${code}: ${stderr.slice(-5).join('\n')}`);
  }
  return JSON.parse(stdout) as ProbeTask[];
}

const round = (n: number) => Math.round(n * 100) / 100;
