import { Hono, type MiddlewareHandler } from 'hono';
import { requestId } from 'hono/request-id';
import { routePath } from 'hono/route';
import { requireOrgMember, requireSession } from '../auth/middleware.ts';
import type { SessionVerifier } from '../auth/verifier.ts';
import type { Database } from '../db/database.ts';
import { directLoaders, type LoadersFactory } from '../db/loaders.ts';
import { migrationsApplied } from '../db/readiness.ts';
import {
  httpValidators,
  type ResolvedCacheConfig,
  type ResponseCache,
  taggingLoaders,
} from '../levers/cache.ts';
import { type CoalesceEvent, coalesce, type ResolvedCoalesceConfig } from '../levers/coalesce.ts';
import { type WebhookRouteOptions, webhookRoutes } from '../sync/webhook-route.ts';
import type { AppEnv } from './context.ts';
import { createErrorHandler, notFound } from './errors.ts';
import { corsAllowlist, securityHeaders } from './middleware/headers.ts';
import { bodyLimit, headerLimit, requireJsonBody } from './middleware/limits.ts';
import { batchRoutes } from './routes/batch.ts';
import { healthRoutes } from './routes/health.ts';
import { meRoutes } from './routes/me.ts';
import { orgRoutes } from './routes/orgs.ts';
import { projectRoutes } from './routes/projects.ts';
import { userRoutes } from './routes/users.ts';

/** A pino-compatible subset, so the API stays runtime-neutral. */
export interface AppLogger {
  info(details: Record<string, unknown>, message: string): void;
  warn(details: Record<string, unknown>, message: string): void;
  error(details: Record<string, unknown>, message: string): void;
}

export interface AppOptions {
  database: Database;
  sessions: SessionVerifier;
  /** How handlers load single entities. @default directLoaders (one query per entity) */
  loaders?: LoadersFactory;
  /** @default ['http://localhost:5173'] */
  corsOrigins?: readonly string[];
  /** @default 65536 */
  bodyLimitBytes?: number;
  /** @default 8192 */
  headerLimitBytes?: number;
  logger?: AppLogger;
  /** Request telemetry middleware, and the Prometheus text for `GET /metrics` when pulled. */
  telemetry?: { middleware: MiddlewareHandler; render?: (() => Promise<string>) | undefined };
  /** The coalescing lever (off when absent). */
  coalesce?: ResolvedCoalesceConfig;
  /** Telemetry hook of the coalescing lever. */
  onCoalesce?: (event: CoalesceEvent) => void;
  /** The caching lever: a response cache (memory / distributed), or HTTP validators (edge). */
  cache?: { config: ResolvedCacheConfig; responses?: ResponseCache };
  /** Clerk webhook intake at `POST /webhooks/clerk`; not mounted when absent. */
  webhooks?: Omit<WebhookRouteOptions, 'database' | 'onCommitted'>;
  /**
   * Called after every commit that appended to the change log; the write answers only
   * once it resolves, so caches are invalidated before the caller can read again.
   */
  onCommitted?: () => void | Promise<void>;
  /** Injected clock for writes (epoch ms). @default Date.now */
  now?: () => number;
  /** Gate calibration only: a controlled extra cost (busy CPU, ms) on one route. */
  calibration?: { route: string; extraMs: number };
}

const silentLogger: AppLogger = { info() {}, warn() {}, error() {} };

/** The API, runtime-neutral: `app.fetch(request)` on Node, Workers and in tests. */
export function createApp(options: AppOptions) {
  const { database, sessions } = options;
  const db = database.db;
  const makeLoaders = options.loaders ?? directLoaders;
  const logger = options.logger ?? silentLogger;
  const onCommitted = options.onCommitted ?? (() => {});

  const app = new Hono<AppEnv>();
  app.onError(createErrorHandler(logger));
  app.notFound(notFound);

  if (options.telemetry) {
    app.use(options.telemetry.middleware);
    const render = options.telemetry.render;
    if (render) {
      app.get('/metrics', async (c) =>
        c.text(await render(), 200, { 'Content-Type': 'text/plain; version=0.0.4; charset=utf-8' }),
      );
    }
  }
  app.use(requestId());
  app.use(accessLog(logger));
  app.use(securityHeaders());
  app.use(corsAllowlist(options.corsOrigins ?? ['http://localhost:5173']));
  app.use(headerLimit(options.headerLimitBytes ?? 8 * 1024));
  const calibration = options.calibration;
  if (calibration && calibration.extraMs > 0) {
    app.use(calibration.route, async (_c, next) => {
      await next();
      // busy, not a timer: a regression that costs CPU, as real ones do
      const until = performance.now() + calibration.extraMs;
      while (performance.now() < until);
    });
  }

  app.route(
    '/',
    healthRoutes({
      database: async () => (await database.client.execute('SELECT 1')).rows.length === 1,
      migrations: () => migrationsApplied(db),
    }),
  );

  if (options.webhooks) {
    app.route('/webhooks', webhookRoutes({ ...options.webhooks, database, onCommitted }));
  }

  app.use('/api/*', bodyLimit(options.bodyLimitBytes ?? 64 * 1024));
  const cache = options.cache?.config.enabled ? options.cache : undefined;
  const tagging = cache?.responses ? taggingLoaders(makeLoaders) : undefined;
  app.use('/api/*', requireSession(sessions), requireJsonBody(), async (c, next) => {
    c.set('loaders', tagging ? tagging(db, () => c.get('cacheTags')) : makeLoaders(db));
    await next();
  });
  if (cache?.config.level === 'edge') app.use('/api/*', httpValidators(cache.config));
  // after the session (the key's scope), before the membership check (shared by followers)
  if (options.coalesce?.enabled) {
    app.use('/api/*', coalesce(options.coalesce, { onCoalesce: options.onCoalesce }));
  }
  // `/api/orgs/:orgId/*` also matches `/api/orgs/:orgId` itself: register once
  app.use('/api/orgs/:orgId/*', requireOrgMember());
  if (cache?.responses) app.use('/api/orgs/:orgId/*', cache.responses.middleware);
  app.route(
    '/api/batch',
    batchRoutes((request) => Promise.resolve(app.fetch(request))),
  );
  app.route('/api/me', meRoutes(db));
  app.route('/api/users', userRoutes(db));
  app.route('/api/orgs/:orgId', orgRoutes(db));
  app.route('/api/orgs/:orgId/projects', projectRoutes(db, onCommitted, options.now));
  return app;
}

export type App = ReturnType<typeof createApp>;

/** One structured line per request: id, method, route template (never the raw path), status, time. */
function accessLog(logger: AppLogger) {
  return async function accessLog(
    c: import('hono').Context<AppEnv>,
    next: () => Promise<void>,
  ): Promise<void> {
    const started = performance.now();
    await next();
    logger.info(
      {
        requestId: c.var.requestId,
        method: c.req.method,
        route: routePath(c),
        status: c.res.status,
        durationMs: Math.round((performance.now() - started) * 100) / 100,
      },
      'request',
    );
  };
}
