import type { MiddlewareHandler } from 'hono';
import { routePath } from 'hono/route';
import type { AppEnv } from '../api/context.ts';
import { AppError } from '../api/errors.ts';
import { annotate, traced } from '../telemetry/spans.ts';
import { invalidOption } from './invalid-option.ts';

/** Span attribute: this request's coalescing role. */
const COALESCE_ROLE = 'dataflow.coalesce.role';

/**
 * The coalescing lever (the audit's `CoalesceConfig`): identical reads in flight share
 * one execution. The first request for a key is the leader and runs the handler; the
 * followers wait for its response and get a copy. `window` keeps a completed response
 * shareable for new arrivals (0 = in-flight only); `maxRequests` caps the followers
 * per leader (the rest run on their own).
 *
 * Safety: the key always starts with the caller's authorization scope (user and active
 * org from the verified token), whatever `keyGenerator` returns, so one caller can never
 * receive a response computed for another. Errors (a throw or a 5xx) go once to the
 * waiters of that execution and are never kept for the window. A leader that runs past
 * `deadlineMs` releases the key: new arrivals start afresh, and its followers run on
 * their own.
 */
export interface CoalesceConfig {
  enabled?: boolean;
  /** Milliseconds a completed response stays shareable; 0 = in-flight only. @default 0 */
  window?: number;
  /** Followers per leader. @default 1000 */
  maxRequests?: number;
  /** The part of the key after the scope. @default method + route + sorted query */
  keyGenerator?: (request: Request) => string;
  /** A leader running longer than this releases its key. @default 5000 */
  deadlineMs?: number;
}

export type ResolvedCoalesceConfig = Readonly<Required<Omit<CoalesceConfig, 'keyGenerator'>>> & {
  readonly keyGenerator: ((request: Request) => string) | null;
};

export function resolveCoalesceConfig(input: CoalesceConfig = {}): ResolvedCoalesceConfig {
  const config = {
    enabled: input.enabled ?? true,
    window: input.window ?? 0,
    maxRequests: input.maxRequests ?? 1000,
    keyGenerator: input.keyGenerator ?? null,
    deadlineMs: input.deadlineMs ?? 5000,
  };
  if (typeof config.enabled !== 'boolean') invalid('enabled', config.enabled, 'a boolean');
  if (!Number.isFinite(config.window) || config.window < 0 || config.window > 60_000) {
    invalid('window', config.window, 'milliseconds from 0 to 60000');
  }
  if (!Number.isInteger(config.maxRequests) || config.maxRequests < 1) {
    invalid('maxRequests', config.maxRequests, 'a positive integer');
  }
  if (!Number.isFinite(config.deadlineMs) || config.deadlineMs <= 0) {
    invalid('deadlineMs', config.deadlineMs, 'a positive number of milliseconds');
  }
  if (config.keyGenerator !== null && typeof config.keyGenerator !== 'function') {
    invalid('keyGenerator', typeof config.keyGenerator, 'a function');
  }
  return Object.freeze(config);
}

const invalid = invalidOption('coalesce');

export interface CoalesceEvent {
  role: 'leader' | 'follower' | 'window' | 'overflow';
  route: string;
}

interface SharedResponse {
  status: number;
  headers: Array<[string, string]>;
  body: ArrayBuffer;
}

interface Flight {
  result: Promise<SharedResponse>;
  followers: number;
  /** Set once completed successfully, while the window lasts. */
  done: boolean;
}

/** Method, path (route with its parameters) and the query with sorted parameters. */
export function defaultCoalesceKey(request: Request): string {
  const url = new URL(request.url);
  const params = [...url.searchParams].sort(([a, av], [b, bv]) =>
    a === b ? av.localeCompare(bv) : a.localeCompare(b),
  );
  return `${request.method} ${url.pathname} ${new URLSearchParams(params).toString()}`;
}

export function coalesce(
  config: ResolvedCoalesceConfig,
  hooks: { onCoalesce?: (event: CoalesceEvent) => void; now?: () => number } = {},
): MiddlewareHandler<AppEnv> {
  const flights = new Map<string, Flight>();

  return async function coalesce(c, next) {
    const method = c.req.method;
    if (method !== 'GET' && method !== 'HEAD') return next();
    // the handler's route template (bounded cardinality, for telemetry)
    const route = routePath(c, -1);
    const session = c.var.session;
    const scope = `${session.userId}|${session.orgId ?? '-'}`;
    const key = `${scope}|${(config.keyGenerator ?? defaultCoalesceKey)(c.req.raw)}`;

    const existing = flights.get(key);
    if (existing && existing.followers < config.maxRequests) {
      existing.followers += 1;
      const role = existing.done ? 'window' : 'follower';
      hooks.onCoalesce?.({ role, route });
      const shared = await traced(
        'coalesce',
        'coalesce.wait',
        () => withDeadline(existing.result, config.deadlineMs).catch(() => null),
        { [COALESCE_ROLE]: role },
      );
      if (shared === null) {
        // the leader hung: time out like it, rather than stampede the database
        throw new AppError(503, 'unavailable', 'the shared read timed out; retry later', {
          headers: { 'Retry-After': '1' },
        });
      }
      c.res = rebuild(shared, c.var.requestId);
      return;
    }
    if (existing) {
      hooks.onCoalesce?.({ role: 'overflow', route });
      annotate({ [COALESCE_ROLE]: 'overflow' });
      return next();
    }

    let settle!: (value: SharedResponse) => void;
    const flight: Flight = {
      result: new Promise<SharedResponse>((resolve) => {
        settle = resolve;
      }),
      followers: 0,
      done: false,
    };
    flights.set(key, flight);
    hooks.onCoalesce?.({ role: 'leader', route });
    annotate({ [COALESCE_ROLE]: 'leader' });
    const release = () => {
      if (flights.get(key) === flight) flights.delete(key);
    };
    const deadline = setTimeout(release, config.deadlineMs);
    try {
      // Hono turns a thrown error into the error response here, so a failure is a 5xx
      await next();
      const res = c.res;
      const keep = res.status < 500 && config.window > 0;
      // Copying the body costs more than a cached read: only when someone will use it.
      if (keep || flight.followers > 0) {
        settle({
          status: res.status,
          headers: [...res.headers],
          body: await res.clone().arrayBuffer(),
        });
      }
      if (keep) {
        flight.done = true;
        setTimeout(release, config.window).unref?.();
      } else {
        release(); // errors go to the current waiters only, never to later arrivals
      }
    } finally {
      clearTimeout(deadline);
    }
  };
}

function rebuild(shared: SharedResponse, requestId: string): Response {
  const headers = new Headers(shared.headers);
  headers.set('X-Request-Id', requestId);
  headers.set('X-Coalesced', 'follower');
  return new Response(shared.status === 204 ? null : shared.body.slice(0), {
    status: shared.status,
    headers,
  });
}

/** Rejects after `ms`; the underlying promise keeps running. */
function withDeadline<T>(promise: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('coalesced leader deadline')), ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}
