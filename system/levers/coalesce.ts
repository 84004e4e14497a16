import { annotate, type RequestTrace, traced, UNTRACED } from '../trace.ts';
import { invalidOption } from './invalid-option.ts';
import { pathAndSortedQuery } from './request-key.ts';

/** Span attribute: this request's coalescing role. */
const COALESCE_ROLE = 'dataflow.coalesce.role';

/**
 * The coalescing lever (the audit's `CoalesceConfig`), framework-free; the HTTP adapter
 * is `api/middleware/coalesce.ts`. Identical reads in flight share one execution. The
 * first request for a key is the leader and runs the handler; the followers wait for
 * its response and get a copy. `window` keeps a completed response
 * shareable for new arrivals (0 = in-flight only); `maxRequests` caps the followers
 * per leader (the rest run on their own).
 *
 * Safety: the key always starts with the caller's authorization scope (user and active
 * org from the verified token), whatever `keyGenerator` returns, so one caller can never
 * receive a response computed for another. Errors (a throw or a 5xx) go once to the
 * waiters of that execution and are never kept for the window. A leader that runs past
 * `deadlineMs` releases the key: new arrivals start afresh, and its followers fail with
 * a `CoalesceTimeoutError` (503 over HTTP) rather than stampede the database.
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

export type CoalesceRole = 'leader' | 'follower' | 'window' | 'overflow';

export interface CoalesceEvent {
  role: CoalesceRole;
  route: string;
}

export interface CoalesceHooks {
  onCoalesce?: (event: CoalesceEvent) => void;
}

/** A follower waited past `deadlineMs` for a leader that did not finish. */
export class CoalesceTimeoutError extends Error {
  override readonly name = 'CoalesceTimeoutError';
}

/** What the leader's execution produced. */
export interface LeaderOutcome<T> {
  /** False for an error: it goes to the current waiters only, never to later arrivals. */
  ok: boolean;
  /** A copy for followers; called only when someone waits or the window keeps it. */
  share(): Promise<T>;
}

/** Whether this caller ran the execution (`leader`, `overflow`) or got a copy. */
export type Coalesced<T> =
  | { role: 'leader' | 'overflow' }
  | { role: 'follower' | 'window'; shared: T };

export interface CoalesceRequest {
  /** The caller's authorization scope (user and active org): always the key's prefix. */
  scope: string;
  /** The request's identity within the scope (`keyGenerator`, or the default key). */
  key: string;
  /** Low-cardinality label for hooks (the route template). */
  route: string;
  /** The request's span and timings (its role is set on its span). */
  trace?: RequestTrace;
}

export interface Coalescer {
  /**
   * Calls `lead` once for concurrent identical requests; the others get `share()`.
   * One adapter owns a coalescer, so every flight of a key shares one `T`.
   */
  run<T>(request: CoalesceRequest, lead: () => Promise<LeaderOutcome<T>>): Promise<Coalesced<T>>;
}

interface Flight<T> {
  result: Promise<T>;
  followers: number;
  /** Set once completed successfully, while the window lasts. */
  done: boolean;
  /** When the leader started (`Date.now()`): past `deadlineMs` the key is free again. */
  startedAt: number;
}

/** Method, path and the query with its parameters sorted by name (`pathAndSortedQuery`). */
export function defaultCoalesceKey(request: Request): string {
  return `${request.method} ${pathAndSortedQuery(request.url)}`;
}

export function createCoalescer(
  config: ResolvedCoalesceConfig,
  hooks: CoalesceHooks = {},
): Coalescer {
  const flights = new Map<string, Flight<unknown>>();

  return {
    async run<T>(
      { scope, key: requestKey, route, trace = UNTRACED }: CoalesceRequest,
      lead: () => Promise<LeaderOutcome<T>>,
    ): Promise<Coalesced<T>> {
      const key = `${scope}|${requestKey}`;
      const now = Date.now();
      let existing = flights.get(key) as Flight<T> | undefined;
      // a leader past its deadline has released the key: checked on arrival, not by a
      // timer per leader (a Timeout object and two timer-list updates on every read). A
      // hung leader's entry then stays until the next arrival for its key replaces it.
      if (existing && !existing.done && now - existing.startedAt >= config.deadlineMs) {
        flights.delete(key);
        existing = undefined;
      }
      if (existing && existing.followers < config.maxRequests) {
        existing.followers += 1;
        const role = existing.done ? 'window' : 'follower';
        hooks.onCoalesce?.({ role, route });
        // on the request's span too: a short wait has no span of its own in production
        annotate(trace, { [COALESCE_ROLE]: role });
        const shared = await traced(
          trace,
          'coalesce',
          'coalesce.wait',
          () => withDeadline(existing.result, config.deadlineMs).catch(() => null),
          { [COALESCE_ROLE]: role },
        );
        if (shared === null) {
          // The leader hung or failed. A hung one is past its deadline now (it started
          // before this follower), so the key is released here too: an arrival right after
          // must not wait on it again because `Date.now()` ticked less than the timer did.
          const flight = existing;
          if (flights.get(key) === flight && !flight.done) flights.delete(key);
          // time out like the leader, rather than stampede the database
          throw new CoalesceTimeoutError('the shared read timed out; retry later');
        }
        return { role, shared };
      }
      if (existing) {
        hooks.onCoalesce?.({ role: 'overflow', route });
        annotate(trace, { [COALESCE_ROLE]: 'overflow' });
        await lead();
        return { role: 'overflow' };
      }

      let settle!: (value: T) => void;
      let fail!: (error: unknown) => void;
      const flight: Flight<T> = {
        result: new Promise<T>((resolve, reject) => {
          settle = resolve;
          fail = reject;
        }),
        followers: 0,
        done: false,
        startedAt: now,
      };
      flight.result.catch(() => {}); // a failure nobody waits for is not unhandled
      flights.set(key, flight as Flight<unknown>);
      hooks.onCoalesce?.({ role: 'leader', route });
      annotate(trace, { [COALESCE_ROLE]: 'leader' });
      const release = () => {
        if (flights.get(key) === flight) flights.delete(key);
      };
      try {
        const outcome = await lead();
        const keep = outcome.ok && config.window > 0;
        // Copying costs more than a cached read: only when someone will use it.
        if (keep || flight.followers > 0) settle(await outcome.share());
        if (keep) {
          flight.done = true;
          setTimeout(release, config.window).unref?.();
        } else {
          release(); // errors go to the current waiters only, never to later arrivals
        }
        return { role: 'leader' };
      } catch (error) {
        release();
        fail(error);
        throw error;
      }
    },
  };
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
