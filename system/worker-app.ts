import { AsyncLocalStorage } from 'node:async_hooks';
import { type Client, createClient } from '@libsql/client/web';
import { LRUCache } from 'lru-cache';
import { createApp } from './api/app.ts';
import { createSessionVerifier } from './auth/verifier.ts';
import { createDatabase } from './db/database.ts';
import { directLoaders } from './db/loaders.ts';
import { changeLogBounds, changesAfter } from './db/queries/changes.ts';
import type { ChangeRow, Membership } from './db/schema.ts';
import { type Env, EnvError, loadEnv } from './env.ts';
import { webCryptoSha256 } from './hash.ts';
import { batchedLoaders } from './levers/batch.ts';
import { createResponseCache } from './levers/cache.ts';
import {
  type CacheApi,
  cacheApiEntries,
  type EntryStore,
  type KvNamespace,
  kvEntries,
  memoryEntries,
  versionedMemberships,
  versionedStore,
} from './levers/cache-versioned.ts';
import type { Levers } from './levers/levers.ts';
import type { ResolvedLevers } from './levers/presets.ts';
import { createUpgradeAuthorizer } from './realtime/authorize.ts';
import { createWebhookIntake } from './sync/intake.ts';
import { createWebhookVerifier } from './sync/verify.ts';
import { createWorkerTelemetry } from './telemetry/worker-telemetry.ts';
import { telemetryConfig } from './telemetry-config.ts';
import { ORG_PATHS } from './worker-org.ts';

const DRAIN_BATCH = 500;

/**
 * Queries in flight per request: workerd opens at most six connections at once for one
 * request, and sqld answers 429 past 128 requests in flight (its default), which 16
 * concurrent N+1 pages at the client's default of 20 each went past.
 */
const REQUEST_DB_CONCURRENCY = 6;

/** The part of the Worker's `ExecutionContext` used here. */
export interface WaitUntil {
  waitUntil(promise: Promise<unknown>): void;
}

/** What the Worker entry serves: the isolate's shared parts, a fresh app per request. */
export interface WorkerApp {
  fetch(request: Request, ctx?: WaitUntil): Promise<Response>;
}

/** The Durable Object namespace binding (`ORG_HUB`), as far as it is used here. */
interface OrgNamespace {
  idFromName(name: string): unknown;
  get(id: unknown): { fetch(request: Request | string): Promise<Response> };
}

/** The org's Durable Object (worker-org.ts): its generation, advancing it, its sockets. */
function orgObjects(namespace: OrgNamespace) {
  const url = (orgId: string, path: string, params: Record<string, string> = {}) =>
    `https://org${path}?${new URLSearchParams({ org: orgId, ...params })}`;
  const stub = (orgId: string) => namespace.get(namespace.idFromName(orgId));
  const generationAt = async (orgId: string, path: string) => {
    const res = await stub(orgId).fetch(url(orgId, path));
    if (!res.ok) throw new Error(`org object ${path}: HTTP ${res.status}`);
    return ((await res.json()) as { generation: number }).generation;
  };
  return {
    generation: (orgId: string) => generationAt(orgId, ORG_PATHS.generation),
    advance: (orgId: string) => generationAt(orgId, ORG_PATHS.advance),
    connect: (request: Request, orgId: string, params: Record<string, string>) =>
      stub(orgId).fetch(new Request(url(orgId, ORG_PATHS.connect, params), request)),
  };
}

/**
 * The app is built once per isolate; what must not be shared between requests lives in a
 * request scope (AsyncLocalStorage, `nodejs_compat`): each request's own database client
 * and the org generations it has read. Building the Hono app, drizzle and the prepared
 * statements per request took about 35% of the Worker's CPU on a cache hit.
 *
 * - A client per request: workerd cancels a request that waits on another request's
 *   I/O, and a client shared by the isolate makes requests wait on each other: it queues
 *   calls beyond its concurrency (20) in one queue, so a call one request queued would be
 *   started by another's completion. Without the queue, 16 N+1 pages at once sent 800
 *   queries to sqld, which answered 429. A client per request keeps the limit per request
 *   (six, see above); the HTTP client opens no connection of its own. The one `Database`
 *   over it (`sharedWrites: false`: no group commit across requests) reaches the current
 *   request's client at each call.
 * - Nothing else that is shared waits on I/O for several requests: loaders (DataLoader
 *   batches) are made per request, the response cache does not share misses, and
 *   coalescing is off whatever the preset says.
 * - Caches keyed by the org's generation (levers/cache-versioned.ts), read once per
 *   request from the org's Durable Object: correct across isolates and colos, at every
 *   level (`memory` in this isolate, `edge` in the colo's Cache API, `distributed` in KV).
 * - After a commit, the writing request drains the change log and advances the org
 *   objects it touched before it answers: their caches move on, their sockets get the rows.
 */
export async function buildWorkerApp(bindings: Record<string, unknown>): Promise<WorkerApp> {
  const source = Object.fromEntries(
    Object.entries(bindings).filter(
      (entry): entry is [string, string] => typeof entry[1] === 'string',
    ),
  );
  const env = loadEnv(source, { distributedCache: 'binding' });
  checkWorkerEnv(env, bindings);
  const config = env.DATAFLOW_LEVERS;
  const orgs = orgObjects(bindings.ORG_HUB as OrgNamespace);
  const scopes = new AsyncLocalStorage<RequestScope>();
  const scope = () => {
    const current = scopes.getStore();
    if (!current) throw new Error('the database was used outside a request');
    return current;
  };
  // made on a request's first query: a cache hit makes none (and closing one costs an Error)
  const requestsClient = () => {
    const current = scope();
    current.client ??= createClient({
      url: env.DATABASE_URL,
      authToken: env.DATABASE_AUTH_TOKEN,
      intMode: 'number',
      concurrency: REQUEST_DB_CONCURRENCY,
    });
    return current.client;
  };
  const inRequestScope = async <T>(work: () => Promise<T>): Promise<T> => {
    const current: RequestScope = { client: undefined, generations: new Map() };
    try {
      return await scopes.run(current, work);
    } finally {
      current.client?.close();
    }
  };
  const logger = {
    // Workers Logs (and wrangler dev) collect the console; errors and warnings only
    info() {},
    warn: (details: Record<string, unknown>, message: string) =>
      console.warn(message, JSON.stringify(details)),
    error: (details: Record<string, unknown>, message: string) =>
      console.error(message, errorDetails(details)),
    isLevelEnabled: () => false,
  };
  const telemetrySettings = telemetryConfig(env);
  const telemetry =
    telemetrySettings &&
    createWorkerTelemetry(telemetrySettings, (error) =>
      logger.warn({ err: String(error) }, 'otel: export failed'),
    );
  const database = createDatabase(requestClient(requestsClient), { sharedWrites: false });
  const instruments = telemetry?.instruments;
  if (instruments) database.onQuery(instruments.onDbOperation);
  // one generation per org per request, read again after this request commits
  const generation = (orgId: string) => {
    const { generations } = scope();
    let known = generations.get(orgId);
    if (!known) {
      known = orgs.generation(orgId);
      generations.set(orgId, known);
    }
    return known;
  };
  // Each write drains the change log itself, from the position this isolate has handed
  // on: no shared drain to wait for and no poll timer (a Worker has no life between
  // requests). Two requests may hand on the same rows; an org object sends each row once.
  // A write knows the rows it appended: right after the position, nothing can sit
  // between, so it skips the read.
  let position = await inRequestScope(async () => (await changeLogBounds(database.db)).newest);
  const onCommitted = async (appended: readonly ChangeRow[]) => {
    const touched = new Set<string>();
    if (appended.length === 0 || appended[0]!.id === position + 1) {
      for (const row of appended) touched.add(row.orgId);
      if (appended.length > 0) position = Math.max(position, appended.at(-1)!.id);
    } else {
      for (;;) {
        const rows = await changesAfter(database.db, position, DRAIN_BATCH);
        for (const row of rows) touched.add(row.orgId);
        if (rows.length > 0) position = Math.max(position, rows.at(-1)!.id);
        if (rows.length < DRAIN_BATCH) break;
      }
    }
    await Promise.all([...touched].map((orgId) => orgs.advance(orgId)));
    scope().generations.clear();
  };
  const baseLoaders = config.batch.enabled ? batchedLoaders(config.batch) : directLoaders;
  const entries = config.cache.enabled ? cacheEntries(config, bindings) : undefined;
  const responses =
    entries &&
    createResponseCache(
      config.cache,
      versionedStore(config.cache.level, entries, generation),
      { onLookup: instruments?.onCacheLookup, onInvalidate: instruments?.onCacheInvalidate },
      { shareMisses: false },
    );
  const memberships = new LRUCache<string, Membership>({ max: 10_000, ttl: config.cache.ttl });
  const levers: Levers = {
    config,
    loaders: responses ? versionedMemberships(memberships, generation)(baseLoaders) : baseLoaders,
    memberships: undefined,
    coalescer: undefined,
    responses,
    httpValidators: config.cache.enabled && config.cache.level === 'edge',
    invalidate: async () => {},
    close: async () => {},
  };
  const sessions = createSessionVerifier({
    jwtKey: env.CLERK_JWT_KEY!,
    sha256: webCryptoSha256,
    authorizedParties: env.CLERK_AUTHORIZED_PARTIES,
    cache: env.AUTH_TOKEN_CACHE ? { max: env.AUTH_TOKEN_CACHE_SIZE } : false,
  });
  const secret = env.CLERK_WEBHOOK_SIGNING_SECRET;
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
    ...(telemetry ? { telemetry: { middleware: telemetry.middleware } } : {}),
    ...(secret.length > 0
      ? {
          webhooks: {
            bodyLimitBytes: env.WEBHOOK_BODY_LIMIT_BYTES,
            intake: createWebhookIntake({
              database,
              verify: createWebhookVerifier(secret),
              onCommitted,
              onDelivery: instruments?.onWebhook,
            }),
          },
        }
      : {}),
  });
  const serve = (request: Request): Promise<Response> => {
    if (new URL(request.url).pathname !== '/ws') return Promise.resolve(app.fetch(request));
    return connectSocket(request, {
      // per request: batched loaders must not batch across requests
      authorize: createUpgradeAuthorizer({
        sessions,
        loaders: levers.loaders(database.db),
        allowedOrigins: env.CORS_ORIGINS,
        // the org object counts each user's sockets
        hub: { canConnect: () => true },
      }),
      connect: orgs.connect,
    });
  };
  return {
    async fetch(request, ctx) {
      try {
        return await inRequestScope(() => serve(request));
      } finally {
        // after the response: the request's spans have ended
        if (telemetry) ctx?.waitUntil(telemetry.flush());
      }
    },
  };
}

/** What belongs to one request: its database client and the generations it has read. */
interface RequestScope {
  client: Client | undefined;
  generations: Map<string, Promise<number>>;
}

/** A libSQL client that is, at each call, the current request's own. */
function requestClient(current: () => Client): Client {
  return new Proxy({} as Client, {
    get(_, property) {
      const client = current();
      const value = Reflect.get(client, property, client);
      return typeof value === 'function' ? value.bind(client) : value;
    },
  });
}

/** `GET /ws`: the same checks as on Node, then the socket is the org object's. */
async function connectSocket(
  request: Request,
  deps: {
    authorize: ReturnType<typeof createUpgradeAuthorizer>;
    connect: ReturnType<typeof orgObjects>['connect'];
  },
): Promise<Response> {
  const refuse = (status: number, code: string, message: string) =>
    Response.json(
      { error: { code, message } },
      { status, headers: { 'cache-control': 'no-store' } },
    );
  if (request.headers.get('upgrade')?.toLowerCase() !== 'websocket') {
    return refuse(426, 'upgrade_required', 'GET /ws with Upgrade: websocket');
  }
  const resumeParam = new URL(request.url).searchParams.get('lastEventId');
  const resumeFrom = resumeParam === null ? undefined : Number(resumeParam);
  if (resumeFrom !== undefined && !(Number.isSafeInteger(resumeFrom) && resumeFrom >= 0)) {
    return refuse(400, 'invalid_request', 'lastEventId must be a non-negative integer');
  }
  const decision = await deps.authorize(request);
  if (!decision.ok) return refuse(decision.status, decision.code, decision.message);
  const { orgId, userId } = decision.session;
  return deps.connect(request, orgId, {
    user: userId,
    ...(resumeFrom === undefined ? {} : { lastEventId: String(resumeFrom) }),
  });
}

/** The store behind the configured cache level, for this isolate. */
function cacheEntries(config: ResolvedLevers, bindings: Record<string, unknown>): EntryStore {
  switch (config.cache.level) {
    case 'memory':
      return memoryEntries();
    case 'edge':
      return cacheApiEntries(
        (globalThis as unknown as { caches: { default: CacheApi } }).caches.default,
      );
    case 'distributed':
      return kvEntries(bindings.CACHE_KV as KvNamespace);
  }
}

/** What a Worker cannot serve, refused by name rather than served wrong. */
export function checkWorkerEnv(env: Env, bindings: Record<string, unknown> = {}): void {
  const problems: string[] = [];
  if (!env.CLERK_JWT_KEY) problems.push('CLERK_JWT_KEY is not set (a secret: wrangler secret put)');
  if (!/^(https?|libsql):\/\//.test(env.DATABASE_URL)) {
    problems.push(
      `DATABASE_URL must be http(s):// or libsql:// on a Worker (sqld or Turso); got ${JSON.stringify(env.DATABASE_URL.split('?')[0])}`,
    );
  }
  const namespace = bindings.ORG_HUB as Partial<OrgNamespace> | undefined;
  if (typeof namespace?.idFromName !== 'function') {
    problems.push(
      'the ORG_HUB Durable Object binding (class OrgHub) is missing: see wrangler.toml',
    );
  }
  const local = (env.OTEL_TRACES_EXPORTER ?? []).filter(
    (kind) => kind !== 'otlp' && kind !== 'none',
  );
  if (local.length > 0) {
    problems.push(
      `OTEL_TRACES_EXPORTER=${local.join(',')} is not available on Workers (no file system or stdout collector): use otlp`,
    );
  }
  const { cache } = env.DATAFLOW_LEVERS;
  if (cache.enabled && cache.level === 'distributed') {
    const kv = bindings.CACHE_KV as Partial<KvNamespace> | undefined;
    if (typeof kv?.get !== 'function') {
      problems.push(
        `DATAFLOW_PRESET=${env.DATAFLOW_LEVERS.preset} uses the distributed cache, which needs the CACHE_KV namespace binding on Workers`,
      );
    }
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
