import { createClient } from '@libsql/client/web';
import { type App, createApp } from './api/app.ts';
import { createSessionVerifier } from './auth/verifier.ts';
import { createDatabase } from './db/database.ts';
import { type Env, EnvError, loadEnv } from './env.ts';
import { webCryptoSha256 } from './hash.ts';
import { createLevers, type Levers } from './levers/levers.ts';
import { createWebhookIntake } from './sync/intake.ts';
import { createChangePublisher } from './sync/publisher.ts';
import { createWebhookVerifier } from './sync/verify.ts';

/** Presets a Worker can serve correctly today (see worker.ts). */
export const WORKER_PRESETS = ['baseline', 'batch'] as const;

/** The app for one isolate, from the Worker's vars and secrets. */
export async function buildWorkerApp(bindings: Record<string, unknown>): Promise<App> {
  const source = Object.fromEntries(
    Object.entries(bindings).filter(
      (entry): entry is [string, string] => typeof entry[1] === 'string',
    ),
  );
  const env = loadEnv(source);
  checkWorkerEnv(env);
  const database = createDatabase(
    createClient({
      url: env.DATABASE_URL,
      authToken: env.DATABASE_AUTH_TOKEN,
      intMode: 'number',
    }),
    { sharedWrites: false },
  );
  const levers: Levers = createLevers(env.DATAFLOW_LEVERS);
  const publisher = createChangePublisher({
    database,
    invalidate: (rows) => levers.invalidate(rows),
    deliver: () => {},
  });
  // from the current end of the log; no poll timer (a Worker has no life between requests)
  let started: Promise<void> | undefined;
  const onCommitted = async () => {
    started ??= publisher.start().then(() => publisher.stop());
    await started;
    await publisher.drain();
  };
  const secret = env.CLERK_WEBHOOK_SIGNING_SECRET;
  return createApp({
    database,
    sessions: createSessionVerifier({
      jwtKey: env.CLERK_JWT_KEY!,
      sha256: webCryptoSha256,
      authorizedParties: env.CLERK_AUTHORIZED_PARTIES,
      cache: env.AUTH_TOKEN_CACHE ? { max: env.AUTH_TOKEN_CACHE_SIZE } : false,
    }),
    levers,
    corsOrigins: env.CORS_ORIGINS,
    bodyLimitBytes: env.BODY_LIMIT_BYTES,
    headerLimitBytes: env.HEADER_LIMIT_BYTES,
    sha256: webCryptoSha256,
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
