import { Hono, type MiddlewareHandler } from 'hono';
import { routePath } from 'hono/route';
import type { SessionVerifier } from '../auth/verifier.ts';
import type { Database } from '../db/database.ts';
import { directLoaders } from '../db/loaders.ts';
import { migrationsApplied } from '../db/readiness.ts';
import type { ChangeRow } from '../db/schema.ts';
import { type Sha256Hex, webCryptoSha256 } from '../hash.ts';
import { taggingLoaders } from '../levers/cache.ts';
import type { Levers } from '../levers/levers.ts';
import type { AppEnv } from './context.ts';
import { createErrorHandler, notFound } from './errors.ts';
import { requireOrgMember, requireSession } from './middleware/auth.ts';
import { cacheTagsOf, httpValidators, routeCache } from './middleware/cache.ts';
import { coalesce } from './middleware/coalesce.ts';
import { corsAllowlist, requestIds, securityHeaders } from './middleware/headers.ts';
import { bodyLimit, headerLimit, requireJsonBody } from './middleware/limits.ts';
import { batchRoutes } from './routes/batch.ts';
import { devRoutes } from './routes/dev.ts';
import { healthRoutes } from './routes/health.ts';
import { meRoutes } from './routes/me.ts';
import { orgRoutes } from './routes/orgs.ts';
import { projectRoutes } from './routes/projects.ts';
import { userRoutes } from './routes/users.ts';
import { type WebhookRouteOptions, webhookRoutes } from './routes/webhooks.ts';

/** A pino-compatible subset, so the API stays runtime-neutral. */
export interface AppLogger {
  info(details: Record<string, unknown>, message: string): void;
  warn(details: Record<string, unknown>, message: string): void;
  error(details: Record<string, unknown>, message: string): void;
  /** pino's: whether a level is logged at all. */
  isLevelEnabled?(level: 'info'): boolean;
}

export interface AppOptions {
  database: Database;
  sessions: SessionVerifier;
  /** The running levers (`createLevers`). @default all off: one query per entity, no cache */
  levers?: Levers;
  /** @default ['http://localhost:5173'] */
  corsOrigins?: readonly string[];
  /** @default 65536 */
  bodyLimitBytes?: number;
  /** @default 8192 */
  headerLimitBytes?: number;
  logger?: AppLogger;
  /**
   * Where the per-request access lines go. @default `logger`. Their fields are fixed and
   * carry no secret (id, method, route template, status, time), so the Node server hands
   * a child of its logger without the redaction pass: pino's wildcard paths cost about
   * 4 µs of the 7 a line costs.
   */
  accessLogger?: AppLogger;
  /** Request telemetry middleware, and the Prometheus text for `GET /metrics` when pulled. */
  telemetry?: { middleware: MiddlewareHandler; render?: (() => Promise<string>) | undefined };
  /**
   * The development sign-in at `/dev/*` (routes/dev.ts), signing with the dev private
   * key. The Node entry passes it only outside production; absent, `/dev/*` is a 404.
   */
  devSignIn?: { privateKeyPem: string };
  /** Clerk webhook intake (`createWebhookIntake`) at `POST /webhooks/clerk`; not mounted when absent. */
  webhooks?: WebhookRouteOptions;
  /**
   * Called after every commit with the change-log rows it appended; the write answers
   * only once it resolves, so caches are invalidated before the caller can read again.
   */
  onCommitted?: (changes: readonly ChangeRow[]) => void | Promise<void>;
  /** Injected clock for writes (epoch ms). @default Date.now */
  now?: () => number;
  /** Gate calibration only: a controlled extra cost (busy CPU, ms) on one route. */
  calibration?: { route: string; extraMs: number };
  /** SHA-256 for ETags. @default Web Crypto (Node passes `node:crypto`) */
  sha256?: Sha256Hex;
}

/** Where the app serves its Prometheus text, when telemetry renders it. */
export const METRICS_PATH = '/metrics';

const silentLogger: AppLogger = { info() {}, warn() {}, error() {} };

/** The API, runtime-neutral: `app.fetch(request)` on Node, Workers and in tests. */
export function createApp(options: AppOptions) {
  const { database, sessions, levers } = options;
  const db = database.db;
  const makeLoaders = levers?.loaders ?? directLoaders;
  const logger = options.logger ?? silentLogger;
  const onCommitted = options.onCommitted ?? (() => {});

  const app = new Hono<AppEnv>();
  app.onError(createErrorHandler(logger));
  app.notFound(notFound);

  if (options.telemetry) app.use(options.telemetry.middleware);
  app.use(requestIds());
  // a per-request line costs even when its level is off (the route, the timing): only when on
  if (options.logger?.isLevelEnabled?.('info') ?? options.logger !== undefined) {
    app.use(accessLog(options.accessLogger ?? logger));
  }
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

  // after the header middlewares (a scrape's answer carries them too), so that the
  // route it is counted under is its own, not the last middleware's `/*`
  const render = options.telemetry?.render;
  if (render) {
    app.get(METRICS_PATH, async (c) =>
      c.text(await render(), 200, { 'Content-Type': 'text/plain; version=0.0.4; charset=utf-8' }),
    );
  }
  app.route(
    '/',
    healthRoutes({
      database: async () => (await database.client.execute('SELECT 1')).rows.length === 1,
      migrations: () => migrationsApplied(db),
    }),
  );

  if (options.webhooks) app.route('/webhooks', webhookRoutes(options.webhooks));
  if (options.devSignIn) {
    app.use('/dev/*', bodyLimit(4 * 1024), requireJsonBody());
    app.route('/dev', devRoutes(db, options.devSignIn.privateKeyPem));
  }

  app.use('/api/*', bodyLimit(options.bodyLimitBytes ?? 64 * 1024));
  const responses = levers?.responses;
  const tagging = responses ? taggingLoaders(makeLoaders) : undefined;
  app.use('/api/*', requireSession(sessions), requireJsonBody(), async (c, next) => {
    // the request's queries are counted and traced through its own handle, not an async context
    const timings = c.get('timings');
    const requestDb = timings
      ? database.forRequest({ onCall: (ms) => timings.add('db', ms), trace: c.get('trace') })
      : db;
    c.set('db', requestDb);
    c.set('loaders', tagging ? tagging(requestDb, cacheTagsOf(c)) : makeLoaders(requestDb));
    await next();
  });
  if (levers?.httpValidators) {
    app.use('/api/*', httpValidators(levers.config.cache, options.sha256 ?? webCryptoSha256));
  }
  // after the session (the key's scope), before the membership check (shared by followers)
  if (levers?.coalescer) app.use('/api/*', coalesce(levers.config.coalesce, levers.coalescer));
  // `/api/orgs/:orgId/*` also matches `/api/orgs/:orgId` itself: register once
  app.use('/api/orgs/:orgId/*', requireOrgMember());
  // each route declares its own cache scope (api/middleware/cache.ts)
  const cached = routeCache(responses);
  app.route(
    '/api/batch',
    batchRoutes((request) => Promise.resolve(app.fetch(request))),
  );
  app.route('/api/me', meRoutes());
  app.route('/api/users', userRoutes());
  app.route('/api/orgs/:orgId', orgRoutes(cached));
  app.route('/api/orgs/:orgId/projects', projectRoutes(cached, onCommitted, options.now));
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
        requestId: c.get('requestId'),
        method: c.req.method,
        route: routePath(c),
        status: c.res.status,
        durationMs: Math.round((performance.now() - started) * 100) / 100,
      },
      'request',
    );
  };
}
