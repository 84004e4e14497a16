import { Bench } from 'tinybench';
import { mintSessionToken } from '../../fixtures/auth/token.ts';
import { userEvent } from '../../fixtures/clerk/events.ts';
import { signedHeaders } from '../../load/webhook-sender.ts';
import { createSessionVerifier } from '../../system/auth/verifier.ts';
import { openDatabase } from '../../system/db/client.ts';
import { getUser, getUsers } from '../../system/db/queries/users.ts';
import type { User } from '../../system/db/schema.ts';
import { createKeyLoader, resolveBatchConfig } from '../../system/levers/batch.ts';
import { createWebhookVerifier } from '../../system/sync/verify.ts';
import type { Figure } from '../results.ts';
import type { BenchSuite, SuiteContext } from './context.ts';

/**
 * tinybench microbenchmarks, in this process over the real embedded bench database:
 * the fixed costs on the hot path (session verify with and without the token cache,
 * svix verify, drizzle vs raw libSQL for one row) and the batching matrix
 * (maxBatchSize x waitTime x retryStrategy, loading one members page of users).
 */
export const microSuite: BenchSuite = {
  description:
    'tinybench: session verify (token cache on/off), svix verify, drizzle vs raw libSQL for one row, the batching matrix',
  databases: ['file'],
  run: (ctx) => {
    const { fixture, org, keys } = ctx.setup;
    const byId = new Map(fixture.users.map((u) => [u.id, u]));
    const users = fixture.memberships
      .filter((m) => m.orgId === org.id)
      .flatMap((m) => byId.get(m.userId) ?? []);
    return runMicro(
      { dbUrl: ctx.dbUrl, keys, webhookSecret: ctx.webhookSecret, users, orgId: org.id },
      ctx,
    );
  },
};

interface MicroContext {
  dbUrl: string;
  keys: { publicKey: string; privateKey: string };
  webhookSecret: string;
  /** Members of one org (the members page). */
  users: readonly User[];
  orgId: string;
}

async function runMicro(
  ctx: MicroContext,
  { settings, signal, progress }: Pick<SuiteContext, 'settings' | 'signal' | 'progress'>,
): Promise<Figure[]> {
  const timeMs = settings.microTimeMs;
  const database = await openDatabase({ url: ctx.dbUrl });
  try {
    const bench = new Bench({ time: timeMs, warmupTime: Math.min(100, timeMs), signal });
    const token = await mintSessionToken({
      privateKeyPem: ctx.keys.privateKey,
      userId: ctx.users[0]!.id,
      orgId: ctx.orgId,
    });
    const cached = createSessionVerifier({ jwtKey: ctx.keys.publicKey });
    const uncached = createSessionVerifier({ jwtKey: ctx.keys.publicKey, cache: false });
    bench.add('fixed: session verify, token cache on', () => cached.verify(token));
    bench.add('fixed: session verify, token cache off', () => uncached.verify(token));

    const verifier = createWebhookVerifier([ctx.webhookSecret]);
    const body = JSON.stringify(
      userEvent('user.updated', { ...ctx.users[0]!, updatedAt: Date.now() }, Date.now()),
    );
    const headers = new Headers(signedHeaders(ctx.webhookSecret, 'msg_micro', body));
    bench.add('fixed: svix verify', () => {
      verifier(body, headers);
    });

    const id = ctx.users[1]!.id;
    bench.add('fixed: one user, drizzle (prepared)', () => getUser(database.db, id));
    bench.add('fixed: one user, raw libSQL', () =>
      database.client.execute({
        sql: 'SELECT * FROM users WHERE id = ? AND deleted_at IS NULL',
        args: [id],
      }),
    );

    const page = ctx.users.slice(0, 50).map((u) => u.id);
    for (const maxBatchSize of [1, 10, 50]) {
      for (const waitTime of [0, 2]) {
        for (const retryStrategy of ['immediate', 'exponential'] as const) {
          const config = resolveBatchConfig({ maxBatchSize, waitTime, retryStrategy });
          bench.add(
            `batch: 50 users, maxBatchSize=${maxBatchSize} waitTime=${waitTime} ${retryStrategy}`,
            async () => {
              const loader = createKeyLoader(
                'user',
                async (keys) => new Map((await getUsers(database.db, keys)).map((u) => [u.id, u])),
                config,
              );
              await Promise.all(page.map((key) => loader.load(key)));
            },
          );
        }
      }
    }
    bench.addEventListener('cycle', (event) => {
      const task = (event as unknown as { task?: { name: string } }).task;
      if (task) progress(`micro: ${task.name}`);
    });
    await bench.run();
    const figures: Figure[] = [];
    for (const task of bench.tasks) {
      const result = task.result;
      if (result.state !== 'completed' && result.state !== 'aborted-with-statistics') continue;
      const [group, name] = task.name.split(': ');
      figures.push({
        suite: 'micro',
        scenario: group!,
        preset: null,
        metric: `${name} mean`,
        value: round(result.latency.mean * 1000),
        unit: 'us',
        samples: result.latency.samplesCount,
        note: `p99 ${round(result.latency.p99 * 1000)} us, rme ${round(result.latency.rme)}%`,
      });
    }
    return figures;
  } finally {
    database.close();
  }
}

const round = (n: number) => Math.round(n * 100) / 100;
