import { type BatchConfig, type ResolvedBatchConfig, resolveBatchConfig } from './batch.ts';
import { type CacheConfig, type ResolvedCacheConfig, resolveCacheConfig } from './cache.ts';
import {
  type CoalesceConfig,
  type ResolvedCoalesceConfig,
  resolveCoalesceConfig,
} from './coalesce.ts';
import {
  type RecoveryConfig,
  type ResolvedRecoveryConfig,
  resolveRecoveryConfig,
} from './recovery.ts';

/**
 * Named combinations of lever configs, shared by the app (`DATAFLOW_PRESET`), the
 * benches and the load runner. Each preset states every lever, so a preset name alone
 * says what is on.
 */
export interface LeversConfig {
  batch: BatchConfig;
  coalesce: CoalesceConfig;
  cache: CacheConfig;
  recovery: RecoveryConfig;
}

export interface ResolvedLevers {
  preset: PresetName;
  batch: ResolvedBatchConfig;
  coalesce: ResolvedCoalesceConfig;
  cache: ResolvedCacheConfig;
  recovery: ResolvedRecoveryConfig;
}

const BATCH_ON = {
  enabled: true,
  waitTime: 0,
  maxBatchSize: 100,
  retryStrategy: 'exponential',
} as const;
const COALESCE_ON = { enabled: true, window: 0, maxRequests: 1000 } as const;
const OFF = { enabled: false } as const;

export const PRESETS = {
  /** Everything off: N+1 loader queries, no cache, no coalescing. */
  baseline: { batch: OFF, coalesce: OFF, cache: OFF, recovery: OFF },
  /** Loader lookups batched into `IN (...)` queries, same tick. */
  batch: { batch: BATCH_ON, coalesce: OFF, cache: OFF, recovery: OFF },
  /** Identical in-flight reads (same caller, same request) share one execution. */
  coalesce: { batch: OFF, coalesce: COALESCE_ON, cache: OFF, recovery: OFF },
  /** Org-scoped responses in an in-process LRU, precise invalidation. */
  'cache-memory': {
    batch: OFF,
    coalesce: OFF,
    cache: { enabled: true, level: 'memory', ttl: 30_000, invalidation: 'precise' },
    recovery: OFF,
  },
  /** The same in Redis, shared by every process (needs REDIS_URL). */
  'cache-redis': {
    batch: OFF,
    coalesce: OFF,
    cache: { enabled: true, level: 'distributed', ttl: 30_000, invalidation: 'precise' },
    recovery: OFF,
  },
  /** All levers on. */
  recommended: {
    batch: BATCH_ON,
    coalesce: COALESCE_ON,
    cache: { enabled: true, level: 'memory', ttl: 30_000, invalidation: 'precise' },
    recovery: { enabled: true, timeoutMs: 2000, breakerThreshold: 5, halfOpenAfterMs: 2000 },
  },
} as const satisfies Record<string, LeversConfig>;

export type PresetName = keyof typeof PRESETS;
export const PRESET_NAMES = Object.keys(PRESETS) as PresetName[];
export const DEFAULT_PRESET: PresetName = 'recommended';

export function isPresetName(name: string): name is PresetName {
  return Object.hasOwn(PRESETS, name);
}

/** The preset, with any field overridden; throws a TypeError naming a bad preset, field or value. */
export function resolveLevers(
  preset: string,
  overrides: Partial<LeversConfig> = {},
): ResolvedLevers {
  if (!isPresetName(preset)) {
    throw new TypeError(
      `unknown preset ${JSON.stringify(preset)}; expected one of ${PRESET_NAMES.join(', ')}`,
    );
  }
  const base: LeversConfig = PRESETS[preset];
  return {
    preset,
    batch: resolveBatchConfig({ ...base.batch, ...definedOnly(overrides.batch ?? {}) }),
    coalesce: resolveCoalesceConfig({ ...base.coalesce, ...definedOnly(overrides.coalesce ?? {}) }),
    cache: resolveCacheConfig({ ...base.cache, ...definedOnly(overrides.cache ?? {}) }),
    recovery: resolveRecoveryConfig({ ...base.recovery, ...definedOnly(overrides.recovery ?? {}) }),
  };
}

/** A spread would let an explicit `undefined` erase a preset's value. */
function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
