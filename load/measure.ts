import autocannon from 'autocannon';

/** One closed-model autocannon run against a URL; only the fields we report. */
export interface Measurement {
  requests: number;
  rps: number;
  /** Milliseconds; autocannon's histogram has 1 ms resolution (sub-ms shows as 0 or 1). */
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
  errors: number;
  non2xx: number;
}

export interface MeasureOptions {
  url: string;
  headers?: Record<string, string>;
  /** @default 16 */
  connections?: number;
  /** @default 5 */
  durationSec?: number;
  /** Seconds of load before measuring; excluded from the figures. @default 1 */
  warmupSec?: number;
}

export async function measure(options: MeasureOptions): Promise<Measurement> {
  const base = {
    url: options.url,
    headers: options.headers ?? {},
    connections: options.connections ?? 16,
  };
  const warmup = options.warmupSec ?? 1;
  if (warmup > 0) await autocannon({ ...base, duration: warmup });
  const result = await autocannon({ ...base, duration: options.durationSec ?? 5 });
  return {
    requests: result.requests.total,
    rps: result.requests.average,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    meanMs: result.latency.average,
    errors: result.errors + result.timeouts,
    non2xx: result.non2xx,
  };
}
