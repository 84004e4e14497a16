import { existsSync, readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { serve } from '@hono/node-server';
import { serveStatic } from '@hono/node-server/serve-static';
import type { SpanExporter } from '@opentelemetry/sdk-trace';
import { pino } from 'pino';
import { createApp, METRICS_PATH } from './api/app.ts';
import { documentSecurityHeaders } from './api/middleware/headers.ts';
import { createSessionVerifier } from './auth/verifier.ts';
import { databaseKind, openDatabase } from './db/client.ts';
import type { Database } from './db/database.ts';
import { runMigrations } from './db/migrate.ts';
import type { ChangeRow } from './db/schema.ts';
import {
  DEV_KEYS_DIR,
  DEV_PUBLIC_KEY_FILE,
  describeEnv,
  type Env,
  EnvError,
  loadEnv,
} from './env.ts';
import { nodeSha256 } from './hash-node.ts';
import { connectRedisStore } from './levers/cache-redis.ts';
import { createLevers } from './levers/levers.ts';
import { createDbGuard } from './levers/recovery.ts';
import { readNodeBody } from './node-body.ts';
import type { Hub } from './realtime/hub.ts';
import { startNodeRealtime } from './realtime/node-realtime.ts';
import { createWebhookIntake } from './sync/intake.ts';
import type { ChangePublisher } from './sync/publisher.ts';
import { startRetention } from './sync/retention.ts';
import { createWebhookVerifier } from './sync/verify.ts';
import { createTelemetry } from './telemetry/telemetry.ts';
import { minStageSpanMs, telemetryConfig } from './telemetry-config.ts';

/**
 * The Node entry and composition root: binds the runtime-neutral app to a Node HTTP
 * server, the embedded or remote libSQL client, Redis, `ws` and process signals. Each
 * subsystem is started by its own factory and returns its `close`; the server closes
 * them last-in first-out.
 */

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
  /**
   * The private key of the development sign-in (tests: their own key pair). Default: the
   * dev key of `make setup`, when its public half is the configured `CLERK_JWT_KEY`.
   * Never used in production.
   */
  devSigningKeyPem?: string;
}

type Logger = ReturnType<typeof createLogger>;

export async function startServer(
  env: Env,
  logger: Logger = createLogger(env),
  options: StartOptions = {},
): Promise<RunningServer> {
  const jwtKey = env.CLERK_JWT_KEY;
  if (!jwtKey) {
    throw new EnvError(
      `CLERK_JWT_KEY is not set and ${DEV_PUBLIC_KEY_FILE} does not exist (run make setup)`,
    );
  }
  for (const variable of env.DEV_FALLBACKS) {
    logger.warn({ variable }, `${variable} unset: using the development secret of make setup`);
  }
  const logError = (message: string) => (err: unknown) => logger.error({ err }, message);
  const closers: Array<() => unknown> = [];
  const closeAll = async () => {
    for (const close of closers.splice(0).reverse()) await close();
  };

  try {
    const telemetry = startTelemetry(env, logger, options);
    if (telemetry) closers.push(() => telemetry.shutdown());

    const database = await openAppDatabase(env, telemetry, logger);
    closers.push(() => database.close());
    if (env.DB_MIGRATE_ON_START) await runMigrations(database.db);

    const running = startLevers(env, telemetry, logError);
    closers.push(() => running.close());

    // commit -> change log -> publisher -> (cache invalidation, then) hub -> sockets
    const realtime = await startNodeRealtime({
      database,
      hub: {
        heartbeatMs: env.WS_HEARTBEAT_MS,
        highWaterBytes: env.WS_SEND_HIGH_WATER_BYTES,
        maxReplay: env.WS_MAX_REPLAY,
        maxConnectionsPerUser: env.WS_MAX_CONNECTIONS_PER_USER,
        frameWindowMs: env.WS_FRAME_WINDOW_MS,
        onError: logError('realtime hub error'),
        onBroadcast: telemetry?.onBroadcast,
      },
      invalidate: (rows) => running.invalidate(rows),
      pollIntervalMs: env.CHANGE_POLL_MS,
      redisUrl: env.REDIS_URL,
      onError: logError,
    });
    closers.push(() => realtime.close());
    telemetry?.observeHub(() => realtime.hub.stats());

    const sessions = createSessionVerifier({
      jwtKey,
      sha256: nodeSha256,
      authorizedParties: env.CLERK_AUTHORIZED_PARTIES,
      cache: env.AUTH_TOKEN_CACHE ? { max: env.AUTH_TOKEN_CACHE_SIZE } : false,
    });
    // this process invalidates and pushes before the write answers; the others are woken
    const onCommitted = (changes: readonly ChangeRow[]) => realtime.committed(changes);
    const app = createApp({
      database,
      sessions,
      levers: running,
      telemetry: telemetry
        ? { middleware: telemetry.httpMiddleware, render: telemetry.render }
        : undefined,
      corsOrigins: env.CORS_ORIGINS,
      bodyLimitBytes: env.BODY_LIMIT_BYTES,
      headerLimitBytes: env.HEADER_LIMIT_BYTES,
      calibration: { route: env.CALIBRATION_ROUTE, extraMs: env.CALIBRATION_EXTRA_MS },
      sha256: nodeSha256,
      logger,
      // the access line has no field to redact (see AppOptions.accessLogger)
      accessLogger: logger.child({}, { redact: { paths: [] } }),
      onCommitted,
      webhooks: webhookIntake(env, database, onCommitted, telemetry, logger),
      ...devSignIn(env, options.devSigningKeyPem),
    });
    if (serveClient(app, env.CLIENT_DIR)) logger.info({ dir: env.CLIENT_DIR }, 'client at /app/');

    const server = await listen(app.fetch, env, logger);
    closers.push(() => server.close());
    closers.push(
      realtime.attach(server.http, {
        sessions,
        loaders: running.loaders,
        allowedOrigins: env.CORS_ORIGINS,
        maxFrameBytes: env.WS_MAX_FRAME_BYTES,
      }).close,
    );
    closers.push(
      startRetention(
        database,
        {
          deliveriesMs: env.WEBHOOK_RETENTION_HOURS * 3600_000,
          changeLogMs: env.CHANGE_LOG_RETENTION_HOURS * 3600_000,
          everyMs: PRUNE_INTERVAL_MS,
        },
        logError('pruning sync tables failed'),
      ).close,
    );

    logger.info({ url: server.url, config: describeEnv(env) }, 'listening');
    let closing: Promise<void> | undefined;
    return {
      url: server.url,
      database,
      hub: realtime.hub,
      publisher: realtime.publisher,
      close() {
        // retention, sockets (1012: clients reconnect), HTTP drain, realtime, levers,
        // database, and last telemetry, so buffered spans are exported before we report
        closing ??= closeAll().then(() => logger.info({}, 'stopped'));
        return closing;
      },
    };
  } catch (error) {
    await closeAll();
    throw error;
  }
}

type Telemetry = ReturnType<typeof startTelemetry>;

/** The database, behind the recovery lever's breaker (and deadline, for remote ones). */
async function openAppDatabase(env: Env, telemetry: Telemetry, logger: Logger) {
  const { recovery } = env.DATAFLOW_LEVERS;
  const guard = recovery.enabled
    ? createDbGuard(recovery, {
        deadline: databaseKind(env.DATABASE_URL) === 'remote',
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
    guard: guard ? (operation) => guard.run(() => operation()) : undefined,
    traceQueryText: env.TRACE_DB_QUERY_TEXT,
    walCheckpoint: env.DB_WAL_CHECKPOINT,
    onGroupCommit: telemetry?.onGroupCommit,
    onCheckpointFailure: (error) =>
      logger.error(
        { err: error },
        'WAL checkpoint worker stopped; SQLite checkpoints inside commits again',
      ),
  });
  if (telemetry) database.onQuery(telemetry.onDbOperation);
  return database;
}

/** The levers of the preset, their hooks wired to telemetry and the log. */
function startLevers(
  env: Env,
  telemetry: Telemetry,
  logError: (message: string) => (error: unknown) => void,
) {
  const levers = env.DATAFLOW_LEVERS;
  return createLevers(levers, {
    distributedStore:
      levers.cache.enabled && levers.cache.level === 'distributed' && env.REDIS_URL
        ? connectRedisStore(env.REDIS_URL, logError('redis cache error'))
        : undefined,
    cacheHooks: {
      onStoreError: logError('cache store unavailable; reading from the database'),
      onLookup: telemetry?.onCacheLookup,
      onInvalidate: telemetry?.onCacheInvalidate,
    },
    batchHooks: { onBatch: telemetry?.onBatch },
    coalesceHooks: { onCoalesce: telemetry?.onCoalesce },
  });
}

/** `POST /webhooks/clerk`, mounted when a signing secret is configured. */
function webhookIntake(
  env: Env,
  database: Database,
  onCommitted: (changes: readonly ChangeRow[]) => Promise<void>,
  telemetry: Telemetry,
  logger: Logger,
) {
  if (env.CLERK_WEBHOOK_SIGNING_SECRET.length === 0) {
    logger.warn({}, 'CLERK_WEBHOOK_SIGNING_SECRET unset: POST /webhooks/clerk is not mounted');
    return undefined;
  }
  return {
    bodyLimitBytes: env.WEBHOOK_BODY_LIMIT_BYTES,
    readBody: readNodeBody,
    intake: createWebhookIntake({
      database,
      verify: createWebhookVerifier(env.CLERK_WEBHOOK_SIGNING_SECRET),
      onCommitted,
      onDelivery: (delivery) => {
        telemetry?.onWebhook(delivery);
        if (delivery.outcome === 'dead_letter') {
          logger.warn({ type: delivery.type }, 'webhook dead-lettered');
        }
      },
    }),
  };
}

function startTelemetry(env: Env, logger: Logger, options: StartOptions) {
  let config = telemetryConfig(env);
  if (options.spanExporters?.length) {
    config = {
      ...(config ?? {
        serviceName: env.OTEL_SERVICE_NAME,
        prometheus: false,
        serverTiming: false,
        minStageSpanMs: minStageSpanMs(env),
      }),
      spanExporters: options.spanExporters,
    };
  }
  // a scrape's span would be noise in every trace view (one per scrape interval)
  return config ? createTelemetry({ ...config, untracedPaths: [METRICS_PATH] }, logger) : undefined;
}

/**
 * The development sign-in (`/dev/*`): outside production, signing with the given key or
 * the dev key of `make setup` when the server verifies with its public half. Never in
 * production, whatever key or files exist.
 */
function devSignIn(env: Env, keyPem?: string): { devSignIn?: { privateKeyPem: string } } {
  if (env.NODE_ENV === 'production') return {};
  if (keyPem) return { devSignIn: { privateKeyPem: keyPem } };
  const privateFile = join(DEV_KEYS_DIR, 'private.pem');
  const publicFile = join(DEV_KEYS_DIR, 'public.pem');
  if (!existsSync(privateFile) || !existsSync(publicFile)) return {};
  if (readFileSync(publicFile, 'utf8').trim() !== env.CLERK_JWT_KEY?.trim()) return {};
  return { devSignIn: { privateKeyPem: readFileSync(privateFile, 'utf8') } };
}

/**
 * The built React client (`make client-build`) at `/app/`: its hashed assets, and
 * `index.html` for every other path under it (the router's routes). Nothing when the
 * folder has no build.
 */
function serveClient(app: ReturnType<typeof createApp>, dir: string): boolean {
  const index = join(dir, 'index.html');
  if (!existsSync(index)) return false;
  app.get('/', (c) => c.redirect('/app/'));
  // the pages are documents: the API's security headers are not all a browser needs there
  app.use('/app/*', documentSecurityHeaders());
  app.use(
    '/app/assets/*',
    serveStatic({ root: dir, rewriteRequestPath: (path) => path.replace(/^\/app/, '') }),
  );
  app.get('/app', (c) => c.redirect('/app/'));
  app.get('/app/*', serveStatic({ path: index }));
  return true;
}

/** The HTTP server; `close()` refuses new connections and drains, forcing after the timeout. */
async function listen(fetch: Parameters<typeof serve>[0]['fetch'], env: Env, logger: Logger) {
  const http = await new Promise<Server>((resolve) => {
    const s = serve({ fetch, hostname: env.HOST, port: env.PORT }, () => resolve(s as Server));
  });
  const { port } = http.address() as AddressInfo;
  return {
    http,
    url: `http://${env.HOST}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        const force = setTimeout(() => {
          logger.warn(
            { timeoutMs: env.SHUTDOWN_TIMEOUT_MS },
            'drain timed out; closing connections',
          );
          http.closeAllConnections();
        }, env.SHUTDOWN_TIMEOUT_MS);
        force.unref();
        http.close(() => {
          clearTimeout(force);
          resolve();
        });
        // idle keep-alive sockets would otherwise hold close() open until they time out
        http.closeIdleConnections();
      }),
  };
}

function createLogger(env: Env) {
  return pino({
    level: env.LOG_LEVEL,
    base: { service: 'dataflow-api' },
    redact: { paths: ['req.headers.authorization', '*.authorization', '*.token'], censor: '***' },
  });
}

async function main(): Promise<void> {
  let env: Env;
  try {
    env = loadEnv(process.env, { readFile: (path) => readFileSync(path, 'utf8') });
  } catch (error) {
    console.error(error instanceof Error ? error.message : error);
    process.exit(2);
  }
  const logger = createLogger(env);
  const server = await startServer(env, logger);
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      server.close().then(
        () => process.exit(0),
        (err: unknown) => {
          logger.error({ err }, 'shutdown failed');
          process.exit(1);
        },
      );
    });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await main();
}
