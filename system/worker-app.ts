import { createClient } from '@libsql/client/web';
import { createApp } from './api/app.ts';
import { createSessionVerifier } from './auth/verifier.ts';
import { createDatabase } from './db/database.ts';
import { changeLogBounds, changesAfter } from './db/queries/changes.ts';
import { type Env, EnvError, loadEnv } from './env.ts';
import { webCryptoSha256 } from './hash.ts';
import { createLevers, type Levers } from './levers/levers.ts';
import { createWebhookIntake } from './sync/intake.ts';
import { createWebhookVerifier } from './sync/verify.ts';

const DRAIN_BATCH = 500;

/**
 * Queries in flight per request: workerd opens at most six connections at once for one
 * request, and sqld answers 429 past 128 requests in flight (its default), which 16
 * concurrent N+1 pages at the client's default of 20 each went past.
 */
const REQUEST_DB_CONCURRENCY = 6;

/** Presets a Worker can serve correctly today (see worker.ts). */
export const WORKER_PRESETS = ['baseline', 'batch'] as const;

/** What the Worker entry serves: the isolate's shared parts, a fresh app per request. */
export interface WorkerApp {
  fetch(request: Request): Promise<Response>;
}

/**
 * The isolate's long-lived parts (configuration, levers, the session verifier and its
 * token cache) are built once; every request gets its own database client and app.
 * workerd cancels a request that waits on another request's I/O, and a client shared by
 * the isolate makes requests wait on each other: it queues calls beyond its concurrency
 * (20) in one queue, so a call one request queued would be started by another's
 * completion. Without the queue, 16 N+1 pages at once sent 800 queries to sqld, which
 * answered 429. A client per request keeps the limit per request (six, see below). Both
 * cost little: the
 * HTTP client opens no connection of its own, and a client plus the Hono app take about
 * 0.3 ms to build here.
 */
export async function buildWorkerApp(bindings: Record<string, unknown>): Promise<WorkerApp> {
  const source = Object.fromEntries(
    Object.entries(bindings).filter(
      (entry): entry is [string, string] => typeof entry[1] === 'string',
    ),
  );
  const env = loadEnv(source);
  checkWorkerEnv(env);
  const openDatabase = () =>
    createDatabase(
      createClient({
        url: env.DATABASE_URL,
        authToken: env.DATABASE_AUTH_TOKEN,
        intMode: 'number',
        concurrency: REQUEST_DB_CONCURRENCY,
      }),
      { sharedWrites: false },
    );
  const levers: Levers = createLevers(env.DATAFLOW_LEVERS);
  const sessions = createSessionVerifier({
    jwtKey: env.CLERK_JWT_KEY!,
    sha256: webCryptoSha256,
    authorizedParties: env.CLERK_AUTHORIZED_PARTIES,
    cache: env.AUTH_TOKEN_CACHE ? { max: env.AUTH_TOKEN_CACHE_SIZE } : false,
  });
  // Each write drains the change log itself, from the position this isolate has handed
  // on: no shared drain to wait for and no poll timer (a Worker has no life between
  // requests). Two requests may hand on the same rows; invalidation is idempotent.
  const first = openDatabase();
  let position: number;
  try {
    position = (await changeLogBounds(first.db)).newest;
  } finally {
    first.close();
  }
  const secret = env.CLERK_WEBHOOK_SIGNING_SECRET;
  const logger = {
    // Workers Logs (and wrangler dev) collect the console; errors and warnings only
    info() {},
    warn: (details: Record<string, unknown>, message: string) =>
      console.warn(message, JSON.stringify(details)),
    error: (details: Record<string, unknown>, message: string) =>
      console.error(message, errorDetails(details)),
    isLevelEnabled: () => false,
  };
  return {
    async fetch(request) {
      const database = openDatabase();
      const onCommitted = async () => {
        for (;;) {
          const rows = await changesAfter(database.db, position, DRAIN_BATCH);
          if (rows.length === 0) return;
          await levers.invalidate(rows);
          position = Math.max(position, rows[rows.length - 1]!.id);
          if (rows.length < DRAIN_BATCH) return;
        }
      };
      const app = createApp({
        database,
        sessions,
        levers,
        corsOrigins: env.CORS_ORIGINS,
        bodyLimitBytes: env.BODY_LIMIT_BYTES,
        headerLimitBytes: env.HEADER_LIMIT_BYTES,
        sha256: webCryptoSha256,
        logger,
        onCommitted,
        ...(secret.length > 0
          ? {
              webhooks: {
                bodyLimitBytes: env.WEBHOOK_BODY_LIMIT_BYTES,
                intake: createWebhookIntake({
                  database,
                  verify: createWebhookVerifier(secret),
                  onCommitted,
                }),
              },
            }
          : {}),
      });
      try {
        return await app.fetch(request);
      } finally {
        database.close();
      }
    },
  };
}

/** What a Worker cannot serve correctly yet, refused by name rather than served wrong. */
export function checkWorkerEnv(env: Env): void {
  const problems: string[] = [];
  if (!env.CLERK_JWT_KEY) problems.push('CLERK_JWT_KEY is not set (a secret: wrangler secret put)');
  if (!/^(https?|libsql):\/\//.test(env.DATABASE_URL)) {
    problems.push(
      `DATABASE_URL must be http(s):// or libsql:// on a Worker (sqld or Turso); got ${JSON.stringify(env.DATABASE_URL.split('?')[0])}`,
    );
  }
  const preset = env.DATAFLOW_LEVERS.preset;
  if (!(WORKER_PRESETS as readonly string[]).includes(preset)) {
    problems.push(
      `DATAFLOW_PRESET=${preset} is not served on Workers yet (one of ${WORKER_PRESETS.join(', ')}): its response cache or coalescing is per isolate`,
    );
  }
  if (problems.length > 0) throw new EnvError(problems.join('; '));
}

/** An error's name and message (pino's `err` serializer does this on Node). */
function errorDetails(details: Record<string, unknown>): string {
  const { err, ...rest } = details;
  const error =
    err instanceof Error ? { name: err.name, message: err.message, cause: String(err.cause) } : err;
  return JSON.stringify({ ...rest, ...(err === undefined ? {} : { err: error }) });
}
