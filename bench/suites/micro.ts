import { runProbe } from '../../load/infra/probe.ts';
import type { Figure } from '../results.ts';
import type { BenchSuite } from './context.ts';

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
    const tasks = await runProbe<ProbeTask[]>(
      'load/infra/micro-probe.ts',
      {
        DB_URL: ctx.dbUrl,
        ORG_ID: org.id,
        USER_IDS: members.slice(0, 50).join(','),
        TIME_MS: String(ctx.settings.microTimeMs),
        PUBLIC_KEY: keys.publicKey,
        PRIVATE_KEY: keys.privateKey,
        WEBHOOK_SECRET: ctx.webhookSecret,
      },
      { signal: ctx.signal, onLine: (line) => ctx.progress(`micro: ${line}`) },
    );
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

const round = (n: number) => Math.round(n * 100) / 100;
