import { z } from 'zod';
import type { CacheConfig } from './levers/cache.ts';
import { DEFAULT_PRESET, type ResolvedLevers, resolveLevers } from './levers/presets.ts';

/**
 * The one place environment variables are read. Runtime-neutral: it takes a plain
 * record (`process.env` on Node, the bindings object on Workers) and returns a typed,
 * validated, frozen config. Every variable is documented in the README table; keep
 * the two in step.
 */

const flag = z.stringbool({
  truthy: ['1', 'true', 'on', 'yes'],
  falsy: ['0', 'false', 'off', 'no'],
});
const csv = z.string().transform((value) =>
  value
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item.length > 0),
);
const positiveInt = z.coerce.number().int().positive();

export const envSchema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  HOST: z.string().min(1).default('127.0.0.1'),
  PORT: z.coerce.number().int().min(0).max(65535).default(8787),
  /** `file:` (embedded), `:memory:`, `http://` / `libsql://` (sqld or Turso). */
  DATABASE_URL: z.string().min(1).default('file:.data/dev.db'),
  DATABASE_AUTH_TOKEN: z.string().optional(),
  /** SQLite busy timeout for embedded `file:` databases. */
  DB_BUSY_TIMEOUT_MS: z.coerce.number().int().min(0).default(5000),
  DB_MIGRATE_ON_START: flag.default(true),
  /** SPKI PEM public key of the Clerk instance (networkless verification). */
  CLERK_JWT_KEY: z.string().optional(),
  CLERK_AUTHORIZED_PARTIES: csv.default(['http://localhost:5173']),
  AUTH_TOKEN_CACHE: flag.default(true),
  AUTH_TOKEN_CACHE_SIZE: positiveInt.default(10_000),
  CORS_ORIGINS: csv.default(['http://localhost:5173']),
  BODY_LIMIT_BYTES: positiveInt.default(64 * 1024),
  HEADER_LIMIT_BYTES: positiveInt.default(8 * 1024),
  /** Svix signing secrets (`whsec_…`), space- or comma-separated: several during rotation. */
  CLERK_WEBHOOK_SIGNING_SECRET: z
    .string()
    .optional()
    .transform((v) => (v ?? '').split(/[\s,]+/).filter((item) => item.length > 0)),
  WEBHOOK_BODY_LIMIT_BYTES: positiveInt.default(256 * 1024),
  /** How long webhook delivery records (dedupe by svix-id) and the change log are kept. */
  WEBHOOK_RETENTION_HOURS: positiveInt.default(7 * 24),
  CHANGE_LOG_RETENTION_HOURS: positiveInt.default(7 * 24),
  /** Redis for cross-process change fan-out (and the distributed cache). Unset: single process. */
  REDIS_URL: z.string().optional(),
  /** Safety-net poll of the change log, for wake-ups lost (e.g. while Redis is down). */
  CHANGE_POLL_MS: positiveInt.default(1000),
  WS_MAX_CONNECTIONS_PER_USER: positiveInt.default(10),
  WS_HEARTBEAT_MS: positiveInt.default(25_000),
  WS_SEND_HIGH_WATER_BYTES: positiveInt.default(1024 * 1024),
  WS_MAX_FRAME_BYTES: positiveInt.default(16 * 1024),
  WS_MAX_REPLAY: positiveInt.default(1000),
  /** Lever preset (see system/levers/presets.ts). */
  DATAFLOW_PRESET: z.string().optional(),
  /** Path of a JSON lever file (preset and per-lever fields); env variables win over it. */
  DATAFLOW_CONFIG: z.string().optional(),
  /** Per-field lever overrides on top of the preset. */
  DATAFLOW_BATCH_ENABLED: flag.optional(),
  DATAFLOW_BATCH_MAX_BATCH_SIZE: z.coerce.number().optional(),
  DATAFLOW_BATCH_WAIT_TIME: z.coerce.number().optional(),
  DATAFLOW_BATCH_RETRY_STRATEGY: z.string().optional(),
  DATAFLOW_COALESCE_ENABLED: flag.optional(),
  DATAFLOW_COALESCE_WINDOW: z.coerce.number().optional(),
  DATAFLOW_COALESCE_MAX_REQUESTS: z.coerce.number().optional(),
  DATAFLOW_CACHE_ENABLED: flag.optional(),
  DATAFLOW_CACHE_LEVEL: z.string().optional(),
  DATAFLOW_CACHE_TTL: z.coerce.number().optional(),
  DATAFLOW_CACHE_INVALIDATION: z.string().optional(),
  DATAFLOW_RECOVERY_ENABLED: flag.optional(),
  DATAFLOW_RECOVERY_TIMEOUT_MS: z.coerce.number().optional(),
  DATAFLOW_RECOVERY_BREAKER_THRESHOLD: z.coerce.number().optional(),
  DATAFLOW_RECOVERY_HALF_OPEN_AFTER_MS: z.coerce.number().optional(),
  /** Serve Prometheus text at `GET /metrics` on the app port. */
  METRICS_ENABLED: flag.default(true),
  /** Standard OpenTelemetry variables (see the README's telemetry section). */
  OTEL_SDK_DISABLED: flag.default(false),
  OTEL_SERVICE_NAME: z.string().min(1).default('dataflow-api'),
  /** Span exporters, comma-separated: `otlp`, `file`, `console`, `none`. Default: `otlp` when an endpoint is set. */
  OTEL_TRACES_EXPORTER: csv.pipe(z.array(z.enum(['otlp', 'file', 'console', 'none']))).optional(),
  /** OTLP metrics push (`otlp`, `none`); the Prometheus `/metrics` endpoint is separate. */
  OTEL_METRICS_EXPORTER: csv.pipe(z.array(z.enum(['otlp', 'prometheus', 'none']))).optional(),
  OTEL_EXPORTER_OTLP_ENDPOINT: z.url().optional(),
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: z.url().optional(),
  OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: z.url().optional(),
  /** `key=value,…` sent with OTLP requests (often an API key: masked in logs). */
  OTEL_EXPORTER_OTLP_HEADERS: z.string().optional(),
  OTEL_EXPORTER_OTLP_TIMEOUT: positiveInt.default(10_000),
  OTEL_METRIC_EXPORT_INTERVAL: positiveInt.default(60_000),
  OTEL_TRACES_SAMPLER: z
    .enum([
      'always_on',
      'always_off',
      'traceidratio',
      'parentbased_always_on',
      'parentbased_always_off',
      'parentbased_traceidratio',
    ])
    .default('parentbased_traceidratio'),
  /** Ratio for the `traceidratio` samplers. Default: 1 in development, 0.1 in production. */
  OTEL_TRACES_SAMPLER_ARG: z.coerce.number().min(0).max(1).optional(),
  OTEL_BSP_MAX_QUEUE_SIZE: positiveInt.default(2048),
  OTEL_BSP_MAX_EXPORT_BATCH_SIZE: positiveInt.default(512),
  OTEL_BSP_SCHEDULE_DELAY: positiveInt.default(5000),
  OTEL_BSP_EXPORT_TIMEOUT: positiveInt.default(30_000),
  /** The `file` span exporter: OTLP/JSON lines, rotated at the size, oldest files deleted. */
  TRACES_DIR: z.string().min(1).default('traces/out'),
  TRACES_FILE_MAX_BYTES: positiveInt.default(16 * 1024 * 1024),
  TRACES_FILE_MAX_FILES: positiveInt.default(4),
  /** Put SQL text (never parameters) on DB spans as `db.query.text`. */
  TRACE_DB_QUERY_TEXT: flag.default(false),
  /** `Server-Timing` header with the per-request breakdown. Default: on outside production. */
  SERVER_TIMING: flag.optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  SHUTDOWN_TIMEOUT_MS: positiveInt.default(10_000),
  /**
   * Calibration of the regression gate only: burn this much CPU (ms) in every request
   * to `CALIBRATION_ROUTE`, a controlled regression. Refused when NODE_ENV=production.
   */
  CALIBRATION_EXTRA_MS: z.coerce.number().min(0).max(1000).default(0),
  CALIBRATION_ROUTE: z.string().startsWith('/').default('/api/orgs/:orgId/members'),
});

/** Where `make setup` writes the development key pair and webhook secret (git-ignored). */
export const DEV_KEYS_DIR = '.dev-keys';
export const DEV_PUBLIC_KEY_FILE = `${DEV_KEYS_DIR}/public.pem`;
export const DEV_WEBHOOK_SECRET_FILE = `${DEV_KEYS_DIR}/webhook-secret`;

/** Secrets that may come from the development files outside production. */
export type DevFallback = 'CLERK_JWT_KEY' | 'CLERK_WEBHOOK_SIGNING_SECRET';

export type Env = Readonly<
  z.output<typeof envSchema> & {
    DATAFLOW_LEVERS: ResolvedLevers;
    /** Which secrets were read from `.dev-keys/` because their variable was unset. */
    DEV_FALLBACKS: readonly DevFallback[];
  }
>;

export class EnvError extends Error {
  override readonly name = 'EnvError';
}

export interface LoadEnvOptions {
  /**
   * Reads a file (throws when it is missing): the `DATAFLOW_CONFIG` lever file, and
   * outside production the development secrets of `make setup` when their variables
   * are unset. On Node, `readFileSync(path, 'utf8')`; without it, neither is read.
   */
  readFile?: (path: string) => string;
}

/** Parses the environment; throws an `EnvError` naming every bad variable and its value. */
export function loadEnv(
  source: Record<string, string | undefined>,
  options: LoadEnvOptions = {},
): Env {
  // Empty strings mean "unset" (a common result of `FOO= make dev`).
  const cleaned = Object.fromEntries(
    Object.entries(source).filter(([, value]) => value !== undefined && value !== ''),
  );
  // Our own prefix is ours alone: a typo there must not silently run the default.
  const unknown = Object.keys(cleaned).filter(
    (key) => key.startsWith('DATAFLOW_') && !Object.hasOwn(envSchema.shape, key),
  );
  if (unknown.length > 0) {
    throw new EnvError(
      `unknown variable${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')}; known DATAFLOW_ variables: ${Object.keys(
        envSchema.shape,
      )
        .filter((k) => k.startsWith('DATAFLOW_'))
        .join(', ')}`,
    );
  }
  const result = envSchema.safeParse(cleaned);
  if (!result.success) {
    const lines = result.error.issues.map((issue) => {
      const key = String(issue.path[0] ?? '?');
      const shown = SECRET_KEYS.has(key) ? '***' : JSON.stringify(cleaned[key]);
      return `${key}=${shown}: ${issue.message}`;
    });
    throw new EnvError(`invalid environment:\n  ${lines.join('\n  ')}`);
  }
  const env = result.data;
  if (env.NODE_ENV === 'production' && !env.CLERK_JWT_KEY) {
    throw new EnvError('CLERK_JWT_KEY is required when NODE_ENV=production');
  }
  if (env.NODE_ENV === 'production' && env.CALIBRATION_EXTRA_MS > 0) {
    throw new EnvError(
      `CALIBRATION_EXTRA_MS=${env.CALIBRATION_EXTRA_MS} is a gate-calibration knob and is refused when NODE_ENV=production`,
    );
  }
  const devFallbacks: DevFallback[] = [];
  if (env.NODE_ENV !== 'production') {
    const devFile = (path: string) => {
      try {
        return options.readFile?.(path);
      } catch {
        return undefined; // no dev secrets yet: the entry says what to run
      }
    };
    if (!env.CLERK_JWT_KEY) {
      env.CLERK_JWT_KEY = devFile(DEV_PUBLIC_KEY_FILE);
      if (env.CLERK_JWT_KEY) devFallbacks.push('CLERK_JWT_KEY');
    }
    if (env.CLERK_WEBHOOK_SIGNING_SECRET.length === 0) {
      const secret = devFile(DEV_WEBHOOK_SECRET_FILE)?.trim();
      if (secret) {
        env.CLERK_WEBHOOK_SIGNING_SECRET = [secret];
        devFallbacks.push('CLERK_WEBHOOK_SIGNING_SECRET');
      }
    }
  }
  let levers: ResolvedLevers;
  try {
    const file = env.DATAFLOW_CONFIG ? readLeversFile(env.DATAFLOW_CONFIG, options) : undefined;
    levers = leversFromEnv(env, file);
  } catch (error) {
    throw new EnvError((error as Error).message);
  }
  if (levers.cache.enabled && levers.cache.level === 'distributed' && !env.REDIS_URL) {
    throw new EnvError(
      `DATAFLOW_PRESET=${levers.preset} uses the distributed cache, which needs REDIS_URL`,
    );
  }
  return Object.freeze({ ...env, DATAFLOW_LEVERS: levers, DEV_FALLBACKS: devFallbacks });
}

/**
 * A lever file: `{ "preset"?, "batch"?, "coalesce"?, "cache"?, "recovery"? }`, each lever
 * with the fields of its config type. Unknown keys are refused by name.
 */
const leversFile = z
  .object({
    preset: z.string().optional(),
    batch: z
      .object({
        enabled: z.boolean(),
        maxBatchSize: z.number(),
        waitTime: z.number(),
        retryStrategy: z.enum(['immediate', 'exponential']),
        maxAttempts: z.number(),
        baseDelayMs: z.number(),
        deadlineMs: z.number(),
      })
      .partial()
      .strict()
      .optional(),
    coalesce: z
      .object({
        enabled: z.boolean(),
        window: z.number(),
        maxRequests: z.number(),
        deadlineMs: z.number(),
      })
      .partial()
      .strict()
      .optional(),
    cache: z
      .object({
        enabled: z.boolean(),
        level: z.enum(['memory', 'edge', 'distributed']),
        ttl: z.number(),
        invalidation: z.enum(['precise', 'group']),
        jitter: z.number(),
        staleIfErrorMs: z.number(),
        staleWhileRevalidateSec: z.number(),
      })
      .partial()
      .strict()
      .optional(),
    recovery: z
      .object({
        enabled: z.boolean(),
        timeoutMs: z.number(),
        breakerThreshold: z.number(),
        halfOpenAfterMs: z.number(),
      })
      .partial()
      .strict()
      .optional(),
  })
  .strict();
type LeversFile = z.infer<typeof leversFile>;

function readLeversFile(path: string, options: LoadEnvOptions): LeversFile {
  if (!options.readFile)
    throw new Error(`DATAFLOW_CONFIG=${path}: config files cannot be read here`);
  let json: unknown;
  try {
    json = JSON.parse(options.readFile(path));
  } catch (error) {
    throw new Error(`DATAFLOW_CONFIG=${path}: ${(error as Error).message}`);
  }
  const parsed = leversFile.safeParse(json);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((issue) => {
      const where = issue.path.join('.') || '(root)';
      const keys = 'keys' in issue ? ` ${(issue.keys as string[]).join(', ')}` : '';
      return `${where}: ${issue.message}${keys}`;
    });
    throw new Error(`DATAFLOW_CONFIG=${path}: ${issues.join('; ')}`);
  }
  return parsed.data;
}

/** The lever configuration the environment asks for (preset + overrides), validated. */
export function leversFromEnv(
  env: z.output<typeof envSchema>,
  file: LeversFile = {},
): ResolvedLevers {
  // precedence: preset (env, else file, else default) < file fields < env fields
  const preset = env.DATAFLOW_PRESET ?? file.preset ?? DEFAULT_PRESET;
  return resolveLevers(preset, {
    batch: { ...file.batch, ...definedOnly(envBatch(env)) },
    coalesce: { ...file.coalesce, ...definedOnly(envCoalesce(env)) },
    cache: { ...file.cache, ...definedOnly(envCache(env)) },
    recovery: { ...file.recovery, ...definedOnly(envRecovery(env)) },
  });
}

function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

const envBatch = (env: z.output<typeof envSchema>) => ({
  enabled: env.DATAFLOW_BATCH_ENABLED,
  maxBatchSize: env.DATAFLOW_BATCH_MAX_BATCH_SIZE,
  waitTime: env.DATAFLOW_BATCH_WAIT_TIME,
  retryStrategy: env.DATAFLOW_BATCH_RETRY_STRATEGY as 'immediate' | 'exponential' | undefined,
});
const envCoalesce = (env: z.output<typeof envSchema>) => ({
  enabled: env.DATAFLOW_COALESCE_ENABLED,
  window: env.DATAFLOW_COALESCE_WINDOW,
  maxRequests: env.DATAFLOW_COALESCE_MAX_REQUESTS,
});
const envCache = (env: z.output<typeof envSchema>) => ({
  enabled: env.DATAFLOW_CACHE_ENABLED,
  level: env.DATAFLOW_CACHE_LEVEL as CacheConfig['level'],
  ttl: env.DATAFLOW_CACHE_TTL,
  invalidation: env.DATAFLOW_CACHE_INVALIDATION as CacheConfig['invalidation'],
});
const envRecovery = (env: z.output<typeof envSchema>) => ({
  enabled: env.DATAFLOW_RECOVERY_ENABLED,
  timeoutMs: env.DATAFLOW_RECOVERY_TIMEOUT_MS,
  breakerThreshold: env.DATAFLOW_RECOVERY_BREAKER_THRESHOLD,
  halfOpenAfterMs: env.DATAFLOW_RECOVERY_HALF_OPEN_AFTER_MS,
});

const SECRET_KEYS = new Set([
  'DATABASE_AUTH_TOKEN',
  'CLERK_WEBHOOK_SIGNING_SECRET',
  'REDIS_URL',
  'OTEL_EXPORTER_OTLP_HEADERS',
]);

/** The effective config for a startup log line: secrets masked, long keys fingerprinted. */
export function describeEnv(env: Env): Record<string, unknown> {
  return {
    ...env,
    DATABASE_URL: maskUrl(env.DATABASE_URL),
    DATABASE_AUTH_TOKEN: env.DATABASE_AUTH_TOKEN ? '***' : undefined,
    CLERK_JWT_KEY: env.CLERK_JWT_KEY ? `<PEM, ${env.CLERK_JWT_KEY.length} chars>` : undefined,
    CLERK_WEBHOOK_SIGNING_SECRET: env.CLERK_WEBHOOK_SIGNING_SECRET.map(() => '***'),
    REDIS_URL: env.REDIS_URL ? maskUrl(env.REDIS_URL) : undefined,
    OTEL_EXPORTER_OTLP_HEADERS: env.OTEL_EXPORTER_OTLP_HEADERS ? '***' : undefined,
  };
}

/** Hides credentials and query parameters (Turso URLs may carry `authToken=`). */
export function maskUrl(url: string): string {
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) return url.split('?')[0] ?? url; // file: / :memory:
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    if (parsed.username) parsed.username = '***';
    for (const key of [...parsed.searchParams.keys()]) parsed.searchParams.set(key, '***');
    return parsed.toString();
  } catch {
    return url;
  }
}
