import { Agent, request } from 'node:http';
import * as hdr from 'hdr-histogram-js';
import { uniformInt } from 'pure-rand/distribution/uniformInt';
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';
import {
  type ArrivalModel,
  fillPath,
  type RequestTemplate,
  type Scenario,
  type ScenarioVars,
} from './scenarios.ts';

/**
 * The scenario runner: drives a `Scenario` against a running app with one arrival
 * model, timing every request in microseconds (autocannon's histogram has 1 ms
 * resolution; a cache hit takes well under that).
 *
 * Why our own loop and not autocannon here: autocannon has no coordinated-omission
 * correction. In the open model every request has a scheduled send time (rate R:
 * request i at i/R) and its latency is measured from that time, as wrk2 does, so a
 * server that stalls is charged for the whole queue it caused. The uncorrected
 * figure (from the actual send) is kept alongside to show the difference.
 * autocannon stays the closed-model reference and is cross-checked against `wrk`.
 */
export interface LoadOptions {
  baseUrl: string;
  headers: Record<string, string>;
  /** The scenario's requests and their mix (any list of request templates). */
  scenario: Pick<Scenario, 'requests'>;
  vars: ScenarioVars;
  model: ArrivalModel;
  /** Seconds measured (closed and open models). */
  durationSec: number;
  /** Seconds of the same load before measuring, excluded from every figure. @default 0 */
  warmupSec?: number;
  /** Seed of the request mix. @default 1 */
  seed?: number;
  /** Keep every latency (ms) in `samples`, for statistics over pooled rounds (the gate). */
  keepSamples?: boolean;
  signal?: AbortSignal;
}

export interface LoadResult {
  model: ArrivalModel['kind'];
  /** Requests completed in the measured window. */
  requests: number;
  /** Answers whose status was not the expected one, plus transport errors. */
  errors: number;
  /** Open model: arrivals still waiting for a free connection when the window closed. */
  dropped: number;
  elapsedSec: number;
  rps: number;
  responseBytes: number;
  /** Latency in ms; open model: from the scheduled time (corrected). */
  latencyMs: Percentiles;
  /** Open model only: from the actual send (what an uncorrected tool would report). */
  serviceMs?: Percentiles;
  /** Per request template: count and errors. */
  perRequest: Record<string, { requests: number; errors: number }>;
  /** The load generator's own CPU, as a fraction of one core. */
  generatorCpu: number;
  /** The corrected latency histogram, HdrHistogram compressed (base64), microseconds. */
  histogram: string;
  /** Every corrected latency, ms, in completion order (with `keepSamples`). */
  samples?: Float64Array;
}

export interface Percentiles {
  p50: number;
  p90: number;
  p95: number;
  p99: number;
  max: number;
  mean: number;
}

interface Prepared {
  template: RequestTemplate;
  path: string;
  body: string | undefined;
}

export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  if ((options.warmupSec ?? 0) > 0) {
    await drive(options, options.warmupSec!, false);
  }
  return drive(options, options.durationSec, true);
}

/** Sends one scenario request (e.g. the setup) and returns the parsed JSON body. */
export async function sendOnce(
  baseUrl: string,
  headers: Record<string, string>,
  template: Omit<RequestTemplate, 'weight'>,
  vars: ScenarioVars,
): Promise<unknown> {
  const response = await fetch(baseUrl + fillPath(template.path, vars), {
    method: template.method,
    headers: { ...headers, ...(template.body ? { 'content-type': 'application/json' } : {}) },
    ...(template.body ? { body: JSON.stringify(template.body) } : {}),
  });
  const text = await response.text();
  if (response.status !== template.expect) {
    throw new Error(
      `${template.method} ${template.path}: expected ${template.expect}, got ${response.status}: ${text.slice(0, 200)}`,
    );
  }
  return text ? JSON.parse(text) : null;
}

function newHistogram() {
  return hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 120_000_000, // 2 minutes in µs
    numberOfSignificantValueDigits: 3,
  });
}

async function drive(
  options: LoadOptions,
  seconds: number,
  measured: boolean,
): Promise<LoadResult> {
  const { model, scenario } = options;
  const url = new URL(options.baseUrl);
  const slots =
    model.kind === 'closed'
      ? model.connections
      : model.kind === 'open'
        ? model.maxInFlight
        : model.requests;
  const agent = new Agent({ keepAlive: true, maxSockets: slots });
  const prepared: Prepared[] = scenario.requests.map((template) => ({
    template,
    path: fillPath(template.path, options.vars),
    body: template.body ? JSON.stringify(template.body) : undefined,
  }));
  const totalWeight = prepared.reduce((a, p) => a + p.template.weight, 0);
  const rng = xoroshiro128plus(options.seed ?? 1);
  const pick = (): Prepared => {
    let left = uniformInt(rng, 0, totalWeight - 1);
    for (const p of prepared) {
      left -= p.template.weight;
      if (left < 0) return p;
    }
    return prepared.at(-1)!;
  };

  const corrected = newHistogram();
  const kept: number[] = [];
  const service = newHistogram();
  const perRequest: LoadResult['perRequest'] = {};
  let requests = 0;
  let errors = 0;
  let responseBytes = 0;
  const signal = options.signal;

  const send = (p: Prepared, scheduledAt: number): Promise<void> =>
    new Promise((resolve) => {
      const sentAt = performance.now();
      const done = (ok: boolean, bytes: number) => {
        const end = performance.now();
        requests++;
        responseBytes += bytes;
        if (!ok) errors++;
        perRequest[p.template.name] ??= { requests: 0, errors: 0 };
        const stats = perRequest[p.template.name]!;
        stats.requests++;
        if (!ok) stats.errors++;
        corrected.recordValue(Math.max(1, Math.round((end - scheduledAt) * 1000)));
        if (options.keepSamples) kept.push(end - scheduledAt);
        service.recordValue(Math.max(1, Math.round((end - sentAt) * 1000)));
        resolve();
      };
      const req = request(
        {
          agent,
          host: url.hostname,
          port: url.port,
          method: p.template.method,
          path: p.path,
          headers: {
            ...options.headers,
            ...(p.body
              ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(p.body) }
              : {}),
          },
        },
        (res) => {
          let bytes = 0;
          res.on('data', (chunk: Buffer) => {
            bytes += chunk.length;
          });
          res.on('end', () => done(res.statusCode === p.template.expect, bytes));
          res.on('error', () => done(false, bytes));
        },
      );
      req.on('error', () => done(false, 0));
      req.end(p.body);
    });

  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  const deadline = started + seconds * 1000;
  let dropped = 0;

  if (model.kind === 'closed') {
    const worker = async () => {
      while (performance.now() < deadline && !signal?.aborted) {
        await send(pick(), performance.now());
      }
    };
    await Promise.all(Array.from({ length: model.connections }, worker));
  } else if (model.kind === 'burst') {
    const now = performance.now();
    const one = pick();
    await Promise.all(Array.from({ length: model.requests }, () => send(one, now)));
  } else {
    const interval = 1000 / model.rate;
    const waiting: Array<{ p: Prepared; scheduledAt: number }> = [];
    const inFlight = new Set<Promise<void>>();
    let issued = 0;
    const launch = (p: Prepared, scheduledAt: number) => {
      const pending: Promise<void> = send(p, scheduledAt).then(() => {
        inFlight.delete(pending);
        const next = waiting.shift();
        if (next && performance.now() < deadline) launch(next.p, next.scheduledAt);
      });
      inFlight.add(pending);
    };
    while (!signal?.aborted) {
      const now = performance.now();
      if (now >= deadline) break;
      // every arrival due by now, each with its own scheduled time
      while (started + issued * interval <= now) {
        const scheduledAt = started + issued * interval;
        issued++;
        const p = pick();
        if (inFlight.size < model.maxInFlight) launch(p, scheduledAt);
        else waiting.push({ p, scheduledAt });
      }
      // sleep until the next arrival is due (timers fire up to ~1 ms late; that lateness
      // is charged to the latency, as it would be to a real user's request)
      const nextDue = Math.min(started + issued * interval, deadline);
      await new Promise((r) => setTimeout(r, Math.max(0, nextDue - performance.now())));
    }
    dropped = waiting.length;
    waiting.length = 0;
    await Promise.all(inFlight);
  }
  const elapsedSec = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  agent.destroy();

  const percentiles = (h: ReturnType<typeof newHistogram>): Percentiles => ({
    p50: h.getValueAtPercentile(50) / 1000,
    p90: h.getValueAtPercentile(90) / 1000,
    p95: h.getValueAtPercentile(95) / 1000,
    p99: h.getValueAtPercentile(99) / 1000,
    max: h.maxValue / 1000,
    mean: Math.round(h.mean) / 1000,
  });
  const result: LoadResult = {
    model: model.kind,
    requests,
    errors,
    dropped,
    elapsedSec,
    rps: requests / elapsedSec,
    responseBytes,
    latencyMs: percentiles(corrected),
    ...(model.kind === 'open' ? { serviceMs: percentiles(service) } : {}),
    perRequest,
    generatorCpu: (cpu.user + cpu.system) / 1000 / (elapsedSec * 1000),
    histogram: measured ? hdr.encodeIntoCompressedBase64(corrected) : '',
    ...(options.keepSamples && measured ? { samples: Float64Array.from(kept) } : {}),
  };
  corrected.destroy();
  service.destroy();
  return result;
}
