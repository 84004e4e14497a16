import { existsSync, readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';
import { serve } from '@hono/node-server';
import type { SpanExporter } from '@opentelemetry/sdk-trace';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { createApp } from './api/app.ts';
import { createSessionVerifier } from './auth/verifier.ts';
import { openDatabase } from './db/client.ts';
import type { Database } from './db/database.ts';
import { directLoaders } from './db/loaders.ts';
import { runMigrations } from './db/migrate.ts';
import { describeEnv, type Env, EnvError, loadEnv } from './env.ts';
import { createDbGuard } from './levers/recovery.ts';
import { leverAppOptions } from './levers/wiring.ts';
import { createUpgradeAuthorizer } from './realtime/authorize.ts';
import { changeSource } from './realtime/change-source.ts';
import { createHub, type Hub } from './realtime/hub.ts';
import { attachRealtime } from './realtime/node-ws.ts';
import { redisNotifier, singleProcess } from './realtime/redis-fanout.ts';
import { type ChangePublisher, createChangePublisher } from './sync/publisher.ts';
import { pruneSyncTables } from './sync/retention.ts';
import { createWebhookVerifier } from './sync/verify.ts';
import { createTelemetry, telemetryConfig } from './telemetry/telemetry.ts';

/**
 * Node entry: binds the runtime-neutral app to a Node HTTP server, the embedded or
 * remote libSQL client, and process signals.
 */

/** Where `make setup` writes the development key pair (git-ignored). */
export const DEV_KEYS_DIR = '.dev-keys';
const PRUNE_INTERVAL_MS = 3600_000;

export interface RunningServer {
  readonly url: string;
  /** Internals, for tests and the harness. */
  readonly database: Database;
  readonly hub: Hub;
  readonly publisher: ChangePublisher;
  /** Graceful stop: refuse new connections, drain in-flight requests, close the DB. */
  close(): Promise<void>;
}

export interface StartOptions {
  /** Extra span exporters (tests: an in-memory exporter), on top of the configured ones. */
  spanExporters?: readonly SpanExporter[];
}

export async function startServer(
  env: Env,
  logger = createLogger(env),
  options: StartOptions = {},
): Promise<RunningServer> {
  const jwtKey = resolveJwtKey(env, logger);
  const levers = env.DATAFLOW_LEVERS;
  let config = telemetryConfig(env);
  if (options.spanExporters?.length) {
    config = {
      ...(config ?? { serviceName: env.OTEL_SERVICE_NAME, prometheus: false, serverTiming: false }),
      spanExporters: options.spanExporters,
    };
  }
  const telemetry = config ? createTelemetry(config, logger) : undefined;
  const dbGuard = levers.recovery.enabled
    ? createDbGuard(levers.recovery, {
        onStateChange: (state) => {
          telemetry?.onBreakerState(state);
          logger.warn({ state }, 'database circuit breaker');
        },
      })
    : undefined;
  const database = await openDatabase({
    url: env.DATABASE_URL,
    authToken: env.DATABASE_AUTH_TOKEN,
    busyTimeoutMs: env.DB_BUSY_TIMEOUT_MS,
    guard: dbGuard ? (operation) => dbGuard.run(() => operation()) : undefined,
    traceQueryText: env.TRACE_DB_QUERY_TEXT,
  });
  if (env.DB_MIGRATE_ON_START) await runMigrations(database.db);
  if (telemetry) database.onQuery(telemetry.onDbOperation);

  const sessions = createSessionVerifier({
    jwtKey,
    authorizedParties: env.CLERK_AUTHORIZED_PARTIES,
    cache: env.AUTH_TOKEN_CACHE ? { max: env.AUTH_TOKEN_CACHE_SIZE } : false,
  });
  const logError = (message: string) => (err: unknown) => logger.error({ err }, message);

  // commit -> change log -> publisher -> (cache invalidation, then) hub -> sockets
  const hub = createHub({
    source: changeSource(database.db),
    heartbeatMs: env.WS_HEARTBEAT_MS,
    highWaterBytes: env.WS_SEND_HIGH_WATER_BYTES,
    maxReplay: env.WS_MAX_REPLAY,
    maxConnectionsPerUser: env.WS_MAX_CONNECTIONS_PER_USER,
    onError: logError('realtime hub error'),
    onBroadcast: telemetry?.onBroadcast,
  });
  const cacheRedis =
    levers.cache.enabled && levers.cache.level === 'distributed' && env.REDIS_URL
      ? new Redis(env.REDIS_URL, {
          commandTimeout: 200,
          maxRetriesPerRequest: 1,
          enableOfflineQueue: false,
        })
      : undefined;
  cacheRedis?.on('error', logError('redis cache error'));
  const leverOptions = leverAppOptions(levers, {
    redis: cacheRedis,
    cacheHooks: {
      onStoreError: logError('cache store unavailable; reading from the database'),
      onLookup: telemetry?.onCacheLookup,
      onInvalidate: telemetry?.onCacheInvalidate,
    },
    batchHooks: { onBatch: telemetry?.onBatch },
  });
  const responses = leverOptions.cache?.responses;
  const publisher = createChangePublisher({
    database,
    // commit -> invalidate -> push: a client refetching after a push never reads stale
    invalidate: (rows) => responses?.invalidate(rows),
    deliver: (rows) => hub.broadcast(rows),
    pollIntervalMs: env.CHANGE_POLL_MS,
    onError: logError('change publisher failed; retrying on the next poke'),
  });
  await publisher.start();
  telemetry?.observeHub(() => hub.stats());
  const notifier = env.REDIS_URL
    ? await redisNotifier(env.REDIS_URL, () => publisher.poke(), logError('redis fan-out error'))
    : singleProcess;

  const webhookSecrets = resolveWebhookSecrets(env, logger);
  const app = createApp({
    database,
    sessions,
    ...leverOptions,
    telemetry: telemetry
      ? { middleware: telemetry.httpMiddleware, render: telemetry.render }
      : undefined,
    onCoalesce: telemetry?.onCoalesce,
    corsOrigins: env.CORS_ORIGINS,
    bodyLimitBytes: env.BODY_LIMIT_BYTES,
    headerLimitBytes: env.HEADER_LIMIT_BYTES,
    calibration: { route: env.CALIBRATION_ROUTE, extraMs: env.CALIBRATION_EXTRA_MS },
    logger,
    // this process invalidates and pushes before the write answers; the others are woken
    onCommitted: () => {
      notifier.notify();
      return publisher.drain();
    },
    webhooks: webhookSecrets
      ? {
          verify: createWebhookVerifier(webhookSecrets),
          bodyLimitBytes: env.WEBHOOK_BODY_LIMIT_BYTES,
          onDelivery: (event) => {
            telemetry?.onWebhook(event);
            if (event.outcome === 'dead_letter')
              logger.warn({ type: event.type }, 'webhook dead-lettered');
          },
        }
      : undefined,
  });

  const server = await new Promise<ReturnType<typeof serve>>((resolve) => {
    const s = serve({ fetch: app.fetch, hostname: env.HOST, port: env.PORT }, () => resolve(s));
  });
  attachRealtime(server as Server, {
    hub,
    maxFrameBytes: env.WS_MAX_FRAME_BYTES,
    authorize: createUpgradeAuthorizer({
      sessions,
      loaders: (leverOptions.loaders ?? directLoaders)(database.db),
      allowedOrigins: env.CORS_ORIGINS,
      hub,
    }),
  });
  const prune = setInterval(() => {
    pruneSyncTables(database, {
      deliveriesMs: env.WEBHOOK_RETENTION_HOURS * 3600_000,
      changeLogMs: env.CHANGE_LOG_RETENTION_HOURS * 3600_000,
    }).catch(logError('pruning sync tables failed'));
  }, PRUNE_INTERVAL_MS);
  prune.unref();

  const { port } = server.address() as AddressInfo;
  const url = `http://${env.HOST}:${port}`;
  logger.info({ url, config: describeEnv(env) }, 'listening');

  let closing: Promise<void> | undefined;
  return {
    url,
    database,
    hub,
    publisher,
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
        clearInterval(prune);
        publisher.stop();
        hub.close(); // 1012: clients reconnect (to this process once it is back, or another)
        server.close(() => {
          clearTimeout(force);
          void notifier.close();
          cacheRedis?.disconnect();
          database.close();
          // buffered spans are exported (bounded by the exporter timeout) before we report stopped
          void (telemetry?.shutdown() ?? Promise.resolve()).finally(() => {
            logger.info({}, 'stopped');
            resolve();
          });
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

/** CLERK_WEBHOOK_SIGNING_SECRET, or outside production the dev secret from `make setup`. */
function resolveWebhookSecrets(
  env: Env,
  logger: { warn: (o: object, m: string) => void },
): string[] | undefined {
  if (env.CLERK_WEBHOOK_SIGNING_SECRET.length > 0) return env.CLERK_WEBHOOK_SIGNING_SECRET;
  const devSecret = `${DEV_KEYS_DIR}/webhook-secret`;
  if (env.NODE_ENV !== 'production' && existsSync(devSecret)) {
    logger.warn(
      { file: devSecret },
      'CLERK_WEBHOOK_SIGNING_SECRET unset: using the development secret',
    );
    return [readFileSync(devSecret, 'utf8').trim()];
  }
  logger.warn({}, 'CLERK_WEBHOOK_SIGNING_SECRET unset: POST /webhooks/clerk is not mounted');
  return undefined;
}

async function main(): Promise<void> {
  let env: Env;
  try {
    env = loadEnv(process.env, { readConfigFile: (path) => readFileSync(path, 'utf8') });
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
