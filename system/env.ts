import { z } from 'zod';
import type { CacheConfig } from './levers/cache.ts';
import { DEFAULT_PRESET, type ResolvedLevers, resolveLevers } from './levers/presets.ts';

/**
 * The one place environment variables are read. Runtime-neutral: it takes a plain
 * record (`process.env` on Node, the bindings object on Workers) and returns a typed,
 * validated, frozen config. Each variable's documentation is its `.meta()` below:
 * `docs/configuration.md` is generated from it (`make docs`), and a test fails when the
 * page is stale.
 */

/** Documentation of a variable: what it does, and how to show its default when a value alone would mislead. */
export interface EnvDoc {
  description: string;
  /** Shown instead of the schema's default (e.g. "from the preset"). */
  shownDefault?: string;
  /** Masked wherever the effective config is printed. */
  secret?: boolean;
  /** The docs group it is listed under. */
  group: EnvGroup;
}
export const ENV_GROUPS = [
  'Server',
  'Database',
  'Auth (Clerk)',
  'Webhooks (Clerk via Svix)',
  'Realtime and fan-out',
  'Levers',
  'Telemetry',
  'Gate calibration',
] as const;
export type EnvGroup = (typeof ENV_GROUPS)[number];

const doc = (
  group: EnvGroup,
  description: string,
  extra: Omit<EnvDoc, 'group' | 'description'> = {},
) => ({ group, description, ...extra }) satisfies EnvDoc;
const fromPreset = (description: string, presetDefault: string) =>
  doc('Levers', `override of the preset: ${description}`, {
    shownDefault: `from the preset (\`${presetDefault}\` in \`recommended\`)`,
  });

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
/** OTLP over HTTP; `grpc`, the third standard value, is not supported (a clear error). */
const otlpProtocol = z.enum(['http/protobuf', 'http/json']);

export const envSchema = z.object({
  NODE_ENV: z
    .enum(['development', 'production', 'test'])
    .default('development')
    .meta(
      doc(
        'Server',
        '`production` requires `CLERK_JWT_KEY`, never falls back to the development secrets, turns Server-Timing off and samples 10% of traces',
      ),
    ),
  HOST: z.string().min(1).default('127.0.0.1').meta(doc('Server', 'listen address')),
  PORT: z.coerce
    .number()
    .int()
    .min(0)
    .max(65535)
    .default(8787)
    .meta(doc('Server', 'listen port (`0`: any free port)')),
  CORS_ORIGINS: csv
    .default(['http://localhost:5173'])
    .meta(doc('Server', 'comma-separated CORS allowlist (also the WebSocket Origin allowlist)')),
  CLIENT_DIR: z
    .string()
    .min(1)
    .default('dist/client')
    .meta(
      doc(
        'Server',
        'the built React client (`make client-build`), served at `/app/` when the folder exists (Node)',
      ),
    ),
  BODY_LIMIT_BYTES: positiveInt
    .default(64 * 1024)
    .meta(doc('Server', 'API request body limit (413 above)')),
  HEADER_LIMIT_BYTES: positiveInt
    .default(8 * 1024)
    .meta(doc('Server', 'total request header limit (431 above)')),
  LOG_LEVEL: z
    .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
    .default('info')
    .meta(
      doc(
        'Server',
        'pino log level; `info` writes an access line per request (about a quarter of the CPU of a cached request), `warn` does not',
      ),
    ),
  SHUTDOWN_TIMEOUT_MS: positiveInt
    .default(10_000)
    .meta(
      doc('Server', 'on SIGTERM, how long to drain in-flight requests before closing connections'),
    ),

  DATABASE_URL: z
    .string()
    .min(1)
    .default('file:.data/dev.db')
    .meta(
      doc(
        'Database',
        '`file:` (embedded libSQL), `:memory:`, `http://` (sqld), `libsql://` (Turso)',
      ),
    ),
  DATABASE_AUTH_TOKEN: z
    .string()
    .optional()
    .meta(doc('Database', 'token for sqld or Turso', { secret: true })),
  DB_BUSY_TIMEOUT_MS: z.coerce
    .number()
    .int()
    .min(0)
    .default(5000)
    .meta(doc('Database', 'SQLite busy timeout of embedded `file:` databases')),
  DB_WAL_CHECKPOINT: z
    .enum(['background', 'inline'])
    .default('background')
    .meta(
      doc(
        'Database',
        'who checkpoints the WAL of a `file:` database: a worker thread (`background`), or SQLite inside a commit every 1,000 pages (`inline`, blocking the process for the fsync)',
      ),
    ),
  DB_MIGRATE_ON_START: flag
    .default(true)
    .meta(doc('Database', 'apply pending migrations when the server starts')),
  TRACE_DB_QUERY_TEXT: flag
    .default(false)
    .meta(doc('Database', 'put SQL text (never parameters) on DB spans as `db.query.text`')),

  CLERK_JWT_KEY: z
    .string()
    .optional()
    .meta(
      doc(
        'Auth (Clerk)',
        'SPKI PEM public key of the Clerk instance: networkless session verification',
        { shownDefault: 'outside production: `.dev-keys/public.pem` of `make setup`' },
      ),
    ),
  CLERK_AUTHORIZED_PARTIES: csv
    .default(['http://localhost:5173'])
    .meta(doc('Auth (Clerk)', 'comma-separated accepted `azp` origins')),
  AUTH_TOKEN_CACHE: flag
    .default(true)
    .meta(doc('Auth (Clerk)', 'cache verified session tokens (by SHA-256) until `exp`')),
  AUTH_TOKEN_CACHE_SIZE: positiveInt
    .default(10_000)
    .meta(doc('Auth (Clerk)', 'most cached tokens (LRU)')),

  CLERK_WEBHOOK_SIGNING_SECRET: z
    .string()
    .optional()
    .transform((v) => (v ?? '').split(/[\s,]+/).filter((item) => item.length > 0))
    .meta(
      doc(
        'Webhooks (Clerk via Svix)',
        'Svix signing secret(s) `whsec_…`, space- or comma-separated during rotation; unset in production: the webhook route is not mounted',
        { secret: true, shownDefault: 'outside production: `.dev-keys/webhook-secret`' },
      ),
    ),
  WEBHOOK_BODY_LIMIT_BYTES: positiveInt
    .default(256 * 1024)
    .meta(
      doc('Webhooks (Clerk via Svix)', 'webhook body limit (413 above, before any signature work)'),
    ),
  WEBHOOK_RETENTION_HOURS: positiveInt
    .default(7 * 24)
    .meta(
      doc(
        'Webhooks (Clerk via Svix)',
        'how long delivery records (dedupe by `svix-id`) are kept; never less than 27 h (Svix retries)',
      ),
    ),

  REDIS_URL: z
    .string()
    .optional()
    .meta(
      doc(
        'Realtime and fan-out',
        'Redis for cross-process change fan-out and the distributed cache; unset: a single process',
        { secret: true },
      ),
    ),
  CHANGE_LOG_RETENTION_HOURS: positiveInt
    .default(7 * 24)
    .meta(doc('Realtime and fan-out', 'how far back a WebSocket client can resume')),
  CHANGE_POLL_MS: positiveInt
    .default(1000)
    .meta(
      doc(
        'Realtime and fan-out',
        'safety-net poll of the change log, for wake-ups lost while Redis is down',
      ),
    ),
  WS_MAX_CONNECTIONS_PER_USER: positiveInt
    .default(10)
    .meta(doc('Realtime and fan-out', 'WebSocket connections per user (429 above)')),
  WS_HEARTBEAT_MS: positiveInt
    .default(25_000)
    .meta(
      doc('Realtime and fan-out', 'ping period; a socket silent for two periods is closed (4408)'),
    ),
  WS_SEND_HIGH_WATER_BYTES: positiveInt
    .default(1024 * 1024)
    .meta(
      doc(
        'Realtime and fan-out',
        'per-socket send buffer above which events are dropped, then a `reset` is sent',
      ),
    ),
  WS_MAX_FRAME_BYTES: positiveInt
    .default(16 * 1024)
    .meta(doc('Realtime and fan-out', 'largest client frame (closed with 1009 above)')),
  WS_MAX_REPLAY: positiveInt
    .default(1000)
    .meta(doc('Realtime and fan-out', 'longest resume replay; more is a `reset`')),
  WS_FRAME_WINDOW_MS: z.coerce
    .number()
    .int()
    .min(0)
    .max(1000)
    .default(5)
    .meta(
      doc(
        'Realtime and fan-out',
        "data batching on the socket: an org's changes within this window after its last frame go out as one `changes` frame (0: a frame per change)",
      ),
    ),

  DATAFLOW_PRESET: z
    .string()
    .optional()
    .meta(
      doc(
        'Levers',
        'lever preset: `baseline`, `batch`, `coalesce`, `cache-memory`, `cache-redis`, `recommended` (docs/levers.md)',
        { shownDefault: '`recommended`' },
      ),
    ),
  DATAFLOW_CONFIG: z
    .string()
    .optional()
    .meta(
      doc(
        'Levers',
        'path of a JSON lever file `{ "preset", "batch": {…}, "coalesce": {…}, "cache": {…}, "recovery": {…} }`; unknown keys are refused; variables win over it',
      ),
    ),
  DATAFLOW_BATCH_ENABLED: flag.optional().meta(fromPreset('batching on or off', 'true')),
  DATAFLOW_BATCH_MAX_BATCH_SIZE: z.coerce
    .number()
    .optional()
    .meta(fromPreset('largest `IN (...)` batch, 1–1000', '100')),
  DATAFLOW_BATCH_WAIT_TIME: z.coerce
    .number()
    .optional()
    .meta(fromPreset('ms to collect keys across concurrent requests (0: the same tick)', '0')),
  DATAFLOW_BATCH_RETRY_STRATEGY: z
    .string()
    .optional()
    .meta(fromPreset('`immediate` or `exponential` (full jitter)', 'exponential')),
  DATAFLOW_COALESCE_ENABLED: flag.optional().meta(fromPreset('coalescing on or off', 'true')),
  DATAFLOW_COALESCE_WINDOW: z.coerce
    .number()
    .optional()
    .meta(fromPreset('ms a completed response stays shareable (0: in flight only)', '0')),
  DATAFLOW_COALESCE_MAX_REQUESTS: z.coerce
    .number()
    .optional()
    .meta(fromPreset('followers per leader', '1000')),
  DATAFLOW_CACHE_ENABLED: flag.optional().meta(fromPreset('response cache on or off', 'true')),
  DATAFLOW_CACHE_LEVEL: z
    .string()
    .optional()
    .meta(
      fromPreset(
        '`memory`, `distributed` (Redis, needs `REDIS_URL`) or `edge` (ETag/304 only)',
        'memory',
      ),
    ),
  DATAFLOW_CACHE_TTL: z.coerce
    .number()
    .optional()
    .meta(fromPreset('fresh time in ms (jittered down by up to 10%)', '30000')),
  DATAFLOW_CACHE_INVALIDATION: z
    .string()
    .optional()
    .meta(fromPreset('`precise` (tags) or `group` (per-org generation)', 'precise')),
  DATAFLOW_RECOVERY_ENABLED: flag
    .optional()
    .meta(fromPreset('database deadline and circuit breaker on or off', 'true')),
  DATAFLOW_RECOVERY_TIMEOUT_MS: z.coerce
    .number()
    .optional()
    .meta(fromPreset('deadline of one database call', '2000')),
  DATAFLOW_RECOVERY_BREAKER_THRESHOLD: z.coerce
    .number()
    .optional()
    .meta(fromPreset('consecutive failures that open the breaker', '5')),
  DATAFLOW_RECOVERY_HALF_OPEN_AFTER_MS: z.coerce
    .number()
    .optional()
    .meta(fromPreset('open time before a probe call', '2000')),

  METRICS_ENABLED: flag
    .default(true)
    .meta(doc('Telemetry', 'serve Prometheus text at `GET /metrics` on the app port')),
  SERVER_TIMING: flag.optional().meta(
    doc('Telemetry', '`Server-Timing` header with the per-request breakdown', {
      shownDefault: 'on outside production',
    }),
  ),
  OTEL_SDK_DISABLED: flag.default(false).meta(doc('Telemetry', 'no traces and no OTLP metrics')),
  OTEL_SERVICE_NAME: z
    .string()
    .min(1)
    .default('dataflow-api')
    .meta(doc('Telemetry', '`service.name` of every span and metric')),
  OTEL_TRACES_EXPORTER: csv
    .pipe(z.array(z.enum(['otlp', 'file', 'console', 'none'])))
    .optional()
    .meta(
      doc('Telemetry', 'span exporters, comma-separated: `otlp`, `file`, `console`, `none`', {
        shownDefault: '`otlp` when an endpoint is set, else none',
      }),
    ),
  OTEL_METRICS_EXPORTER: csv
    .pipe(z.array(z.enum(['otlp', 'prometheus', 'none'])))
    .optional()
    .meta(
      doc('Telemetry', 'OTLP metrics push (`otlp`, `none`); the Prometheus endpoint is separate', {
        shownDefault: '`otlp` when an endpoint is set',
      }),
    ),
  OTEL_EXPORTER_OTLP_ENDPOINT: z
    .url()
    .optional()
    .meta(doc('Telemetry', 'OTLP/HTTP base URL; `/v1/traces` and `/v1/metrics` are appended')),
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: z
    .url()
    .optional()
    .meta(doc('Telemetry', 'OTLP/HTTP traces URL, as is')),
  OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: z
    .url()
    .optional()
    .meta(doc('Telemetry', 'OTLP/HTTP metrics URL, as is')),
  OTEL_EXPORTER_OTLP_PROTOCOL: otlpProtocol
    .default('http/protobuf')
    .meta(
      doc(
        'Telemetry',
        'OTLP/HTTP encoding: `http/protobuf` (the standard default, about half the CPU and 40% of the bytes per span) or `http/json`',
      ),
    ),
  OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: otlpProtocol.optional().meta(
    doc('Telemetry', 'the encoding for traces only', {
      shownDefault: '`OTEL_EXPORTER_OTLP_PROTOCOL`',
    }),
  ),
  OTEL_EXPORTER_OTLP_METRICS_PROTOCOL: otlpProtocol.optional().meta(
    doc('Telemetry', 'the encoding for metrics only', {
      shownDefault: '`OTEL_EXPORTER_OTLP_PROTOCOL`',
    }),
  ),
  OTEL_EXPORTER_OTLP_HEADERS: z
    .string()
    .optional()
    .meta(
      doc('Telemetry', '`key=value,…` sent with OTLP requests (often an API key)', {
        secret: true,
      }),
    ),
  OTEL_EXPORTER_OTLP_TIMEOUT: positiveInt
    .default(10_000)
    .meta(doc('Telemetry', 'OTLP export timeout, ms')),
  OTEL_METRIC_EXPORT_INTERVAL: positiveInt
    .default(60_000)
    .meta(doc('Telemetry', 'OTLP metrics push period, ms')),
  OTEL_TRACES_SAMPLER: z
    .enum([
      'always_on',
      'always_off',
      'traceidratio',
      'parentbased_always_on',
      'parentbased_always_off',
      'parentbased_traceidratio',
    ])
    .default('parentbased_traceidratio')
    .meta(doc('Telemetry', 'the standard samplers')),
  OTEL_TRACES_SAMPLER_ARG: z.coerce
    .number()
    .min(0)
    .max(1)
    .optional()
    .meta(
      doc('Telemetry', 'ratio of the `traceidratio` samplers', {
        shownDefault: '1 in development, 0.1 in production',
      }),
    ),
  OTEL_BSP_MAX_QUEUE_SIZE: positiveInt
    .default(2048)
    .meta(doc('Telemetry', 'spans buffered for export; more are dropped and counted')),
  OTEL_BSP_MAX_EXPORT_BATCH_SIZE: positiveInt
    .default(512)
    .meta(doc('Telemetry', 'spans per export request')),
  OTEL_BSP_SCHEDULE_DELAY: positiveInt
    .default(5000)
    .meta(doc('Telemetry', 'ms between span exports')),
  OTEL_BSP_EXPORT_TIMEOUT: positiveInt
    .default(30_000)
    .meta(doc('Telemetry', 'ms an export may take')),
  TRACES_MIN_STAGE_SPAN_US: z.coerce
    .number()
    .int()
    .min(0)
    .optional()
    .meta(
      doc(
        'Telemetry',
        'a stage shorter than this (µs) with no child span and no error gets no span of its own (it still counts in Server-Timing); 0 keeps every stage',
        { shownDefault: '0 in development, 100 in production' },
      ),
    ),
  TRACES_DIR: z
    .string()
    .min(1)
    .default('traces/out')
    .meta(doc('Telemetry', 'the `file` span exporter: where its OTLP/JSON lines go')),
  TRACES_FILE_MAX_BYTES: positiveInt
    .default(16 * 1024 * 1024)
    .meta(doc('Telemetry', 'the `file` exporter rotates at this size')),
  TRACES_FILE_MAX_FILES: positiveInt
    .default(4)
    .meta(doc('Telemetry', 'the `file` exporter keeps this many files, deleting the oldest')),

  CALIBRATION_EXTRA_MS: z.coerce
    .number()
    .min(0)
    .max(1000)
    .default(0)
    .meta(
      doc(
        'Gate calibration',
        'busy CPU (ms) added to every request of `CALIBRATION_ROUTE`, a controlled regression; refused when `NODE_ENV=production`',
      ),
    ),
  CALIBRATION_ROUTE: z
    .string()
    .startsWith('/')
    .default('/api/orgs/:orgId/members')
    .meta(doc('Gate calibration', 'the route the calibration knob slows down')),
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
  /**
   * What backs the `distributed` cache level: Redis on Node (`REDIS_URL` required), or
   * a binding the Worker checks itself (Workers KV). @default 'redis'
   */
  distributedCache?: 'redis' | 'binding';
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
  const redisNeeded = (options.distributedCache ?? 'redis') === 'redis';
  if (
    levers.cache.enabled &&
    levers.cache.level === 'distributed' &&
    redisNeeded &&
    !env.REDIS_URL
  ) {
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

/** The documentation of every variable, in schema order (`docs/configuration.md`). */
export function envDocs(): Array<
  EnvDoc & { name: string; default: string | undefined; values: string[] | undefined }
> {
  type Def = { type: string; defaultValue?: unknown; entries?: object; innerType?: Schema };
  type Schema = { _zod: { def: Def } };
  return Object.entries(envSchema.shape).map(([name, schema]) => {
    const meta = z.globalRegistry.get(schema) as EnvDoc | undefined;
    if (!meta?.description) throw new Error(`${name} has no documentation (.meta)`);
    const def = (schema as unknown as Schema)._zod.def;
    const value = def.type === 'default' ? def.defaultValue : undefined;
    const inner = def.innerType?._zod.def ?? def;
    return {
      name,
      ...meta,
      values: inner.type === 'enum' && inner.entries ? Object.keys(inner.entries) : undefined,
      default:
        meta.shownDefault ??
        (value === undefined
          ? undefined
          : `\`${Array.isArray(value) ? value.join(',') : String(value)}\``),
    };
  });
}

const SECRET_KEYS = new Set(envDocs().flatMap((d) => (d.secret ? [d.name] : [])));

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
