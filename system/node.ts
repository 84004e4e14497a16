import { existsSync, readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';
import { serve } from '@hono/node-server';
import { pino } from 'pino';
import { createApp } from './api/app.ts';
import { createSessionVerifier } from './auth/verifier.ts';
import { openDatabase } from './db/client.ts';
import { runMigrations } from './db/migrate.ts';
import { describeEnv, type Env, EnvError, loadEnv } from './env.ts';

/**
 * Node entry: binds the runtime-neutral app to a Node HTTP server, the embedded or
 * remote libSQL client, and process signals.
 */

/** Where `make setup` writes the development key pair (git-ignored). */
export const DEV_KEYS_DIR = '.dev-keys';

export interface RunningServer {
  readonly url: string;
  /** Graceful stop: refuse new connections, drain in-flight requests, close the DB. */
  close(): Promise<void>;
}

export async function startServer(env: Env, logger = createLogger(env)): Promise<RunningServer> {
  const jwtKey = resolveJwtKey(env, logger);
  const database = await openDatabase({
    url: env.DATABASE_URL,
    authToken: env.DATABASE_AUTH_TOKEN,
    busyTimeoutMs: env.DB_BUSY_TIMEOUT_MS,
  });
  if (env.DB_MIGRATE_ON_START) await runMigrations(database.db);

  const app = createApp({
    database,
    sessions: createSessionVerifier({
      jwtKey,
      authorizedParties: env.CLERK_AUTHORIZED_PARTIES,
      cache: env.AUTH_TOKEN_CACHE ? { max: env.AUTH_TOKEN_CACHE_SIZE } : false,
    }),
    corsOrigins: env.CORS_ORIGINS,
    bodyLimitBytes: env.BODY_LIMIT_BYTES,
    headerLimitBytes: env.HEADER_LIMIT_BYTES,
    logger,
  });

  const server = await new Promise<ReturnType<typeof serve>>((resolve) => {
    const s = serve({ fetch: app.fetch, hostname: env.HOST, port: env.PORT }, () => resolve(s));
  });
  const { port } = server.address() as AddressInfo;
  const url = `http://${env.HOST}:${port}`;
  logger.info({ url, config: describeEnv(env) }, 'listening');

  let closing: Promise<void> | undefined;
  return {
    url,
    close() {
      closing ??= new Promise<void>((resolve) => {
        const force = setTimeout(() => {
          logger.warn(
            { timeoutMs: env.SHUTDOWN_TIMEOUT_MS },
            'drain timed out; closing connections',
          );
          if ('closeAllConnections' in server) server.closeAllConnections();
        }, env.SHUTDOWN_TIMEOUT_MS);
        force.unref();
        server.close(() => {
          clearTimeout(force);
          database.close();
          logger.info({}, 'stopped');
          resolve();
        });
        // idle keep-alive sockets would otherwise hold close() open until they time out
        if ('closeIdleConnections' in server) server.closeIdleConnections();
      });
      return closing;
    },
  };
}

function createLogger(env: Env) {
  return pino({
    level: env.LOG_LEVEL,
    base: { service: 'dataflow-api' },
    redact: { paths: ['req.headers.authorization', '*.authorization', '*.token'], censor: '***' },
  });
}

/** CLERK_JWT_KEY, or outside production the dev key that `make setup` generated. */
function resolveJwtKey(env: Env, logger: { warn: (o: object, m: string) => void }): string {
  if (env.CLERK_JWT_KEY) return env.CLERK_JWT_KEY;
  const devKey = `${DEV_KEYS_DIR}/public.pem`;
  if (env.NODE_ENV !== 'production' && existsSync(devKey)) {
    logger.warn({ file: devKey }, 'CLERK_JWT_KEY unset: using the development key pair');
    return readFileSync(devKey, 'utf8');
  }
  throw new EnvError(`CLERK_JWT_KEY is not set and ${devKey} does not exist (run make setup)`);
}

async function main(): Promise<void> {
  let env: Env;
  try {
    env = loadEnv(process.env);
  } catch (error) {
    console.error(error instanceof Error ? error.message : error);
    process.exit(2);
  }
  const server = await startServer(env);
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      server.close().then(() => process.exit(0));
    });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await main();
}
