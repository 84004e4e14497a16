import { type BatchConfig, type ResolvedBatchConfig, resolveBatchConfig } from './batch.ts';
import {
  type CoalesceConfig,
  type ResolvedCoalesceConfig,
  resolveCoalesceConfig,
} from './coalesce.ts';

/**
 * Named combinations of lever configs, shared by the app (`DATAFLOW_PRESET`), the
 * benches and the load runner. Each preset states every lever, so a preset name alone
 * says what is on. The coalescing, caching and recovery levers join this table as they
 * land.
 */
export interface LeversConfig {
  batch: BatchConfig;
  coalesce: CoalesceConfig;
}

export interface ResolvedLevers {
  preset: PresetName;
  batch: ResolvedBatchConfig;
  coalesce: ResolvedCoalesceConfig;
}

export const PRESETS = {
  /** Everything off: N+1 loader queries, the audit's "multiple round trips". */
  baseline: { batch: { enabled: false }, coalesce: { enabled: false } },
  /** Loader lookups batched into `IN (...)` queries, same tick. */
  batch: {
    batch: { enabled: true, waitTime: 0, maxBatchSize: 100, retryStrategy: 'exponential' },
    coalesce: { enabled: false },
  },
  /** Identical in-flight reads (same caller, same request) share one execution. */
  coalesce: {
    batch: { enabled: false },
    coalesce: { enabled: true, window: 0, maxRequests: 1000 },
  },
  /** Both levers that exist so far. */
  'batch-coalesce': {
    batch: { enabled: true, waitTime: 0, maxBatchSize: 100, retryStrategy: 'exponential' },
    coalesce: { enabled: true, window: 0, maxRequests: 1000 },
  },
} as const satisfies Record<string, LeversConfig>;

export type PresetName = keyof typeof PRESETS;
export const PRESET_NAMES = Object.keys(PRESETS) as PresetName[];
export const DEFAULT_PRESET: PresetName = 'batch';

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
  };
}

/** A spread would let an explicit `undefined` erase a preset's value. */
function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
