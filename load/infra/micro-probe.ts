import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { Bench } from 'tinybench';
import { mintSessionToken } from '../../fixtures/auth/token.ts';
import { userEvent } from '../../fixtures/clerk/events.ts';
import { createSessionVerifier } from '../../system/auth/verifier.ts';
import { openDatabase } from '../../system/db/client.ts';
import { getUser, getUsers } from '../../system/db/queries/users.ts';
import { nodeSha256 } from '../../system/hash-node.ts';
import { createKeyLoader, resolveBatchConfig } from '../../system/levers/batch.ts';
import { createWebhookVerifier } from '../../system/sync/verify.ts';
import { createBoundMetrics } from '../../system/telemetry/bound-metrics.ts';
import { createInstruments, METER_NAME } from '../../system/telemetry/metrics.ts';
import { signedHeaders } from '../webhook-sender.ts';

/**
 * The micro suite's tinybench tasks (`bench/suites/micro.ts`), run from their bundle
 * (`bundled()`, built as the production server is), so the app's side is the code as
 * deployed: under `tsx` every closure the code makes also pays esbuild's `__name`
 * wrapper. Prints one JSON line: per task its name, mean and p99 in ms, rme in %,
 * samples. A line per task on stderr as it finishes (the suite's progress).
 *
 * Env: `DB_URL`, `ORG_ID`, `USER_IDS` (members of that org, comma-separated, at least
 * 2), `TIME_MS` (per task), `PUBLIC_KEY` and `PRIVATE_KEY` (PEM), `WEBHOOK_SECRET`.
 */
const env = (name: string) => {
  const value = process.env[name];
  if (!value) throw new Error(`micro-probe: ${name} is not set`);
  return value;
};
const timeMs = Number(env('TIME_MS'));
/** Cache hits timed at once by the metrics task, whose figures are per hit. */
const HITS = 100;
const METRICS_TASK = 'fixed: metrics of one cache hit';
const orgId = env('ORG_ID');
const userIds = env('USER_IDS').split(',');
const publicKey = env('PUBLIC_KEY');
const webhookSecret = env('WEBHOOK_SECRET');

const database = await openDatabase({ url: env('DB_URL') });
try {
  const bench = new Bench({ time: timeMs, warmupTime: Math.min(100, timeMs) });
  const token = await mintSessionToken({
    privateKeyPem: env('PRIVATE_KEY'),
    userId: userIds[0]!,
    orgId,
  });
  // as the Node server builds it: the token cache's key through `node:crypto`
  const cached = createSessionVerifier({ jwtKey: publicKey, sha256: nodeSha256 });
  const uncached = createSessionVerifier({ jwtKey: publicKey, cache: false });
  bench.add('fixed: session verify, token cache on', () => cached.verify(token));
  bench.add('fixed: session verify, token cache off', () => uncached.verify(token));

  // what a cache hit records, as the Node server's instruments do (bound series): in
  // flight up and down, the coalescer's role, the response cache's lookup, the request's
  // duration and query count. A hundred per task: one is below the timer's resolution
  const instruments = createInstruments(
    new MeterProvider().getMeter(METER_NAME),
    createBoundMetrics({ name: METER_NAME }),
  );
  const route = '/api/orgs/:orgId/members';
  bench.add(METRICS_TASK, () => {
    for (let i = 0; i < HITS; i++) {
      instruments.onActive(1);
      instruments.onCoalesce({ role: 'leader', route });
      instruments.onCacheLookup({ level: 'memory', result: 'hit' });
      instruments.onRequest({ method: 'GET', route, status: 200, durationMs: 0.1, dbQueries: 0 });
      instruments.onActive(-1);
    }
  });

  const user = await getUser(database.db, userIds[0]!);
  if (user === null) throw new Error(`micro-probe: user ${userIds[0]} is not in the database`);
  const verifier = createWebhookVerifier([webhookSecret]);
  const body = JSON.stringify(
    userEvent('user.updated', { ...user, updatedAt: Date.now() }, Date.now()),
  );
  const headers = new Headers(signedHeaders(webhookSecret, 'msg_micro', body));
  bench.add('fixed: svix verify', () => {
    verifier(body, headers);
  });

  const id = userIds[1]!;
  bench.add('fixed: one user, drizzle (prepared)', () => getUser(database.db, id));
  bench.add('fixed: one user, raw libSQL', () =>
    database.client.execute({
      sql: 'SELECT * FROM users WHERE id = ? AND deleted_at IS NULL',
      args: [id],
    }),
  );

  const page = userIds.slice(0, 50);
  for (const maxBatchSize of [1, 10, 50]) {
    for (const waitTime of [0, 2]) {
      for (const retryStrategy of ['immediate', 'exponential'] as const) {
        const config = resolveBatchConfig({ maxBatchSize, waitTime, retryStrategy });
        bench.add(
          `batch: ${page.length} users, maxBatchSize=${maxBatchSize} waitTime=${waitTime} ${retryStrategy}`,
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
    if (task) process.stderr.write(`${task.name}\n`);
  });
  await bench.run();
  const tasks = bench.tasks.flatMap(({ name, result }) =>
    result.state === 'completed' || result.state === 'aborted-with-statistics'
      ? [
          {
            name,
            meanMs: result.latency.mean / (name === METRICS_TASK ? HITS : 1),
            p99Ms: result.latency.p99 / (name === METRICS_TASK ? HITS : 1),
            rme: result.latency.rme,
            samples: result.latency.samplesCount,
          },
        ]
      : [],
  );
  process.stdout.write(`${JSON.stringify(tasks)}\n`);
} finally {
  await database.close();
}
