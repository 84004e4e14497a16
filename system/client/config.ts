/**
 * The client's levers, mirroring the server's config shapes, switchable from one place
 * so the harness can compare them: `?client=baseline|recommended` on any page (kept for
 * the tab in sessionStorage), or single fields (`?batch=0`, `?realtime=invalidate`).
 *
 * - `batch`: GETs issued within `waitTime` ms go out as one `POST /api/batch` (at most
 *   `maxBatchSize`, the server's limit is 20); `retryStrategy` paces retries of failed
 *   reads (TanStack Query's `retryDelay`).
 * - `staleTimeMs`: how long a read is fresh for TanStack Query (deduplicated meanwhile).
 * - `realtime`: `patch` applies each pushed change to the cached rows it touches
 *   (`setQueryData`), `invalidate` refetches the queries of the changed entity.
 * - `optimistic`: project edits show at once and roll back on error.
 */
export interface ClientConfig {
  name: string;
  batch: {
    enabled: boolean;
    maxBatchSize: number;
    waitTime: number;
    retryStrategy: 'immediate' | 'exponential';
  };
  staleTimeMs: number;
  realtime: 'patch' | 'invalidate';
  optimistic: boolean;
}

export const CLIENT_PRESETS = {
  baseline: {
    name: 'baseline',
    batch: { enabled: false, maxBatchSize: 20, waitTime: 0, retryStrategy: 'immediate' },
    staleTimeMs: 0,
    realtime: 'invalidate',
    optimistic: false,
  },
  recommended: {
    name: 'recommended',
    batch: { enabled: true, maxBatchSize: 20, waitTime: 5, retryStrategy: 'exponential' },
    staleTimeMs: 30_000,
    realtime: 'patch',
    optimistic: true,
  },
} as const satisfies Record<string, ClientConfig>;

export type ClientPresetName = keyof typeof CLIENT_PRESETS;
const STORAGE_KEY = 'dataflow.client';

/** The config of this tab: the URL's choice, else the tab's last one, else recommended. */
export function clientConfigFrom(search: string, storage?: Storage): ClientConfig {
  const params = new URLSearchParams(search);
  const stored = storage?.getItem(STORAGE_KEY);
  const saved = stored ? (JSON.parse(stored) as Record<string, string>) : {};
  const pick = (key: string) => params.get(key) ?? saved[key] ?? null;
  const presetName = pick('client') ?? 'recommended';
  if (!(presetName in CLIENT_PRESETS)) {
    throw new Error(
      `client=${presetName}: expected one of ${Object.keys(CLIENT_PRESETS).join(', ')}`,
    );
  }
  const preset: ClientConfig = CLIENT_PRESETS[presetName as ClientPresetName];
  const batch = pick('batch');
  const realtime = pick('realtime');
  if (realtime !== null && realtime !== 'patch' && realtime !== 'invalidate') {
    throw new Error(`realtime=${realtime}: expected patch or invalidate`);
  }
  const config: ClientConfig = {
    ...preset,
    batch: { ...preset.batch, ...(batch === null ? {} : { enabled: batch === '1' }) },
    ...(realtime === null ? {} : { realtime }),
  };
  const chosen: Record<string, string> = {};
  for (const key of ['client', 'batch', 'realtime']) {
    const value = pick(key);
    if (value !== null) chosen[key] = value;
  }
  storage?.setItem(STORAGE_KEY, JSON.stringify(chosen));
  return config;
}
