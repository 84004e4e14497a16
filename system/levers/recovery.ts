import {
  BrokenCircuitError,
  CircuitState,
  ConsecutiveBreaker,
  circuitBreaker,
  handleWhen,
  TaskCancelledError,
  TimeoutStrategy,
  timeout,
  wrap,
} from 'cockatiel';
import { isTransientDbError } from '../db/errors.ts';
import { invalidOption } from './invalid-option.ts';

/**
 * The error-recovery lever around the database: a per-call deadline and a circuit
 * breaker (cockatiel). Retries happen at one layer only — the batch dispatcher, for
 * idempotent reads and transient errors — so nothing here retries. When the database
 * keeps failing or timing out, the breaker opens: calls fail at once with a 503 and
 * `Retry-After` instead of piling up; after `halfOpenAfterMs` one probe call is let
 * through, and its success closes the breaker again.
 */
export interface RecoveryConfig {
  enabled?: boolean;
  /** Deadline of one database call (remote databases; an embedded call cannot be cut short). @default 2000 */
  timeoutMs?: number;
  /** Consecutive failures that open the breaker. @default 5 */
  breakerThreshold?: number;
  /** How long the breaker stays open before a probe. @default 2000 */
  halfOpenAfterMs?: number;
}

export type ResolvedRecoveryConfig = Readonly<Required<RecoveryConfig>>;

export function resolveRecoveryConfig(input: RecoveryConfig = {}): ResolvedRecoveryConfig {
  const config = {
    enabled: input.enabled ?? true,
    timeoutMs: input.timeoutMs ?? 2000,
    breakerThreshold: input.breakerThreshold ?? 5,
    halfOpenAfterMs: input.halfOpenAfterMs ?? 2000,
  };
  if (typeof config.enabled !== 'boolean') invalid('enabled', config.enabled, 'a boolean');
  if (!(Number.isFinite(config.timeoutMs) && config.timeoutMs > 0)) {
    invalid('timeoutMs', config.timeoutMs, 'a positive number of milliseconds');
  }
  if (!(Number.isInteger(config.breakerThreshold) && config.breakerThreshold > 0)) {
    invalid('breakerThreshold', config.breakerThreshold, 'a positive integer');
  }
  if (!(Number.isFinite(config.halfOpenAfterMs) && config.halfOpenAfterMs > 0)) {
    invalid('halfOpenAfterMs', config.halfOpenAfterMs, 'a positive number of milliseconds');
  }
  return Object.freeze(config);
}

const invalid = invalidOption('recovery');

export type BreakerState = 'closed' | 'open' | 'half-open';

export interface DbGuard {
  run<T>(operation: (signal: AbortSignal) => Promise<T>): Promise<T>;
  state(): BreakerState;
}

/**
 * True for the errors this lever raises (also when wrapped, e.g. by drizzle's
 * DrizzleQueryError): the caller should answer 503 + Retry-After.
 */
export function isUnavailable(error: unknown): boolean {
  for (let e = error, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if (e instanceof BrokenCircuitError || e instanceof TaskCancelledError) return true;
  }
  return false;
}

export interface DbGuardOptions {
  onStateChange?: (state: BreakerState) => void;
  /**
   * Put `timeoutMs` on every call. An embedded database answers synchronously, so a
   * deadline cannot cut its call short and would only cost a timer and an
   * AbortController per call (about 20 µs, more than the lookup): off for `file:`.
   * @default true
   */
  deadline?: boolean;
}

export function createDbGuard(config: ResolvedRecoveryConfig, hooks: DbGuardOptions = {}): DbGuard {
  // Only failures that say "the database is not well" count: a constraint violation
  // or a bad query is the caller's problem and must not open the breaker.
  const counted = handleWhen(
    (error) => isTransientDbError(error) || error instanceof TaskCancelledError,
  );
  const breaker = circuitBreaker(counted, {
    halfOpenAfter: config.halfOpenAfterMs,
    breaker: new ConsecutiveBreaker(config.breakerThreshold),
  });
  const policy =
    hooks.deadline === false
      ? breaker
      : wrap(breaker, timeout(config.timeoutMs, TimeoutStrategy.Aggressive));
  const stateOf = (s: CircuitState): BreakerState =>
    s === CircuitState.Closed ? 'closed' : s === CircuitState.HalfOpen ? 'half-open' : 'open';
  breaker.onStateChange((s) => hooks.onStateChange?.(stateOf(s)));
  return {
    run: (operation) => policy.execute(({ signal }) => operation(signal)),
    state: () => stateOf(breaker.state),
  };
}
