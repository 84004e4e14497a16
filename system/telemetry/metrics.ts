import { monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';
import type { Attributes } from '@opentelemetry/api';
import { PrometheusExporter, PrometheusSerializer } from '@opentelemetry/exporter-prometheus';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import type { MiddlewareHandler } from 'hono';
import { routePath } from 'hono/route';
import { HANDLED_EVENT_TYPES } from '../sync/clerk-events.ts';

/**
 * Metrics, wired in the one place that touches the OpenTelemetry SDK. The app, levers
 * and sync expose plain hooks; this module turns them into instruments and serves them
 * in Prometheus text at `/metrics`. Names are defined once, here (Prometheus form: dots
 * become underscores, counters gain `_total`). Labels are bounded: route templates,
 * never raw paths or ids.
 */
export const METRICS = {
  httpDuration: 'http.server.request.duration',
  httpActive: 'http.server.active_requests',
  dbRoundTrips: 'dataflow.db.round_trips',
  cacheLookups: 'dataflow.cache.lookups',
  cacheInvalidations: 'dataflow.cache.invalidations',
  batchSize: 'dataflow.batch.size',
  batchWait: 'dataflow.batch.wait',
  coalesceRequests: 'dataflow.coalesce.requests',
  breakerState: 'dataflow.breaker.state',
  webhookEvents: 'sync.webhook.events',
  webhookLag: 'sync.webhook.lag',
  wsConnections: 'realtime.connections',
  wsMessagesSent: 'realtime.messages.sent',
  wsMessagesDropped: 'realtime.messages.dropped',
  eventLoopDelay: 'nodejs.eventloop.delay.p99',
  heapUsed: 'process.memory.heap_used',
  rss: 'process.memory.rss',
  gcDuration: 'nodejs.gc.duration',
} as const;

/** Seconds buckets that resolve sub-millisecond reads up to multi-second outliers. */
const SECONDS_BUCKETS = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

export interface Telemetry {
  /** Prometheus text of every instrument. */
  render(): Promise<string>;
  httpMiddleware: MiddlewareHandler;
  countRoundTrip(): void;
  onCacheLookup(event: { level: string; result: string }): void;
  onCacheInvalidate(event: { mode: string; entries: number }): void;
  onBatch(event: { loader: string; size: number; waitMs: number; ok: boolean }): void;
  onCoalesce(event: { role: string; route: string }): void;
  onBreakerState(state: 'closed' | 'open' | 'half-open'): void;
  onWebhook(event: { type: string | null; outcome: string; lagMs: number }): void;
  /** Sampled at scrape time. */
  observeHub(stats: () => { connections: number; sent: number; dropped: number }): void;
  shutdown(): Promise<void>;
}

export function createTelemetry(serviceName = 'dataflow-api'): Telemetry {
  const exporter = new PrometheusExporter({ preventServerStart: true });
  const provider = new MeterProvider({
    resource: resourceFromAttributes({ 'service.name': serviceName }),
    readers: [exporter],
  });
  const meter = provider.getMeter('dataflow');
  const serializer = new PrometheusSerializer();

  const httpDuration = meter.createHistogram(METRICS.httpDuration, {
    unit: 's',
    description: 'HTTP server request duration, by route template',
    advice: { explicitBucketBoundaries: SECONDS_BUCKETS },
  });
  const httpActive = meter.createUpDownCounter(METRICS.httpActive, {
    description: 'requests in flight',
  });
  const roundTrips = meter.createCounter(METRICS.dbRoundTrips, {
    description: 'database round trips',
  });
  const cacheLookups = meter.createCounter(METRICS.cacheLookups, {
    description: 'cache lookups by level and result',
  });
  const invalidations = meter.createCounter(METRICS.cacheInvalidations, {
    description: 'cache entries invalidated, by mode',
  });
  const batchSize = meter.createHistogram(METRICS.batchSize, {
    description: 'keys per batch dispatch',
    advice: { explicitBucketBoundaries: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000] },
  });
  const batchWait = meter.createHistogram(METRICS.batchWait, {
    unit: 's',
    description: 'time from first key to dispatch',
    advice: { explicitBucketBoundaries: SECONDS_BUCKETS },
  });
  const coalesce = meter.createCounter(METRICS.coalesceRequests, {
    description: 'coalescing roles per request',
  });
  let breaker = 0;
  meter
    .createObservableGauge(METRICS.breakerState, {
      description: 'database breaker: 0 closed, 1 half-open, 2 open',
    })
    .addCallback((result) => result.observe(breaker, { 'dataflow.breaker': 'db' }));
  const webhookEvents = meter.createCounter(METRICS.webhookEvents, {
    description: 'webhook deliveries by type and outcome',
  });
  const webhookLag = meter.createHistogram(METRICS.webhookLag, {
    unit: 's',
    description: 'svix timestamp to commit',
    advice: { explicitBucketBoundaries: [0.01, 0.05, 0.1, 0.5, 1, 5, 30, 60, 300, 3600] },
  });
  let hubStats: (() => { connections: number; sent: number; dropped: number }) | undefined;
  meter
    .createObservableGauge(METRICS.wsConnections, { description: 'open WebSocket connections' })
    .addCallback((r) => r.observe(hubStats?.().connections ?? 0));
  meter
    .createObservableCounter(METRICS.wsMessagesSent, { description: 'change frames written' })
    .addCallback((r) => r.observe(hubStats?.().sent ?? 0));
  meter
    .createObservableCounter(METRICS.wsMessagesDropped, {
      description: 'change frames dropped by backpressure',
    })
    .addCallback((r) => r.observe(hubStats?.().dropped ?? 0));

  // Runtime: event-loop delay (p99 over the scrape interval), heap, RSS, GC pauses.
  const loopDelay = monitorEventLoopDelay({ resolution: 10 });
  loopDelay.enable();
  meter
    .createObservableGauge(METRICS.eventLoopDelay, {
      unit: 's',
      description: 'event-loop delay p99 since the last scrape',
    })
    .addCallback((r) => {
      r.observe(loopDelay.percentile(99) / 1e9);
      loopDelay.reset();
    });
  meter
    .createObservableGauge(METRICS.heapUsed, { unit: 'By', description: 'V8 heap in use' })
    .addCallback((r) => r.observe(process.memoryUsage().heapUsed));
  meter
    .createObservableGauge(METRICS.rss, { unit: 'By', description: 'resident set size' })
    .addCallback((r) => r.observe(process.memoryUsage.rss()));
  const gcDuration = meter.createHistogram(METRICS.gcDuration, {
    unit: 's',
    description: 'garbage-collection pauses',
    advice: { explicitBucketBoundaries: [0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5] },
  });
  const gcObserver = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) gcDuration.record(entry.duration / 1000);
  });
  gcObserver.observe({ entryTypes: ['gc'] });

  const knownTypes = new Set<string>(HANDLED_EVENT_TYPES);

  return {
    async render() {
      const { resourceMetrics } = await exporter.collect();
      return serializer.serialize(resourceMetrics);
    },
    httpMiddleware: async function httpMetrics(c, next) {
      const started = performance.now();
      httpActive.add(1);
      try {
        await next();
      } finally {
        httpActive.add(-1);
        const attributes: Attributes = {
          'http.request.method': c.req.method,
          'http.route': routePath(c, -1) || 'unmatched',
          'http.response.status_code': c.res.status,
        };
        httpDuration.record((performance.now() - started) / 1000, attributes);
      }
    },
    countRoundTrip: () => roundTrips.add(1),
    onCacheLookup: (e) =>
      cacheLookups.add(1, { 'dataflow.cache.level': e.level, 'dataflow.cache.result': e.result }),
    onCacheInvalidate: (e) =>
      invalidations.add(e.entries, { 'dataflow.cache.invalidation': e.mode }),
    onBatch: (e) => {
      const attributes = { 'dataflow.loader': e.loader, 'dataflow.ok': e.ok };
      batchSize.record(e.size, attributes);
      batchWait.record(e.waitMs / 1000, attributes);
    },
    onCoalesce: (e) => coalesce.add(1, { 'dataflow.coalesce.role': e.role, 'http.route': e.route }),
    onBreakerState: (state) => {
      breaker = state === 'closed' ? 0 : state === 'half-open' ? 1 : 2;
    },
    onWebhook: (e) => {
      // unknown types are folded so a sender cannot grow the label set
      const type = e.type !== null && knownTypes.has(e.type) ? e.type : 'other';
      webhookEvents.add(1, { 'sync.event.type': type, 'sync.outcome': e.outcome });
      if (e.outcome === 'applied') webhookLag.record(Math.max(0, e.lagMs) / 1000);
    },
    observeHub: (stats) => {
      hubStats = stats;
    },
    shutdown: () => {
      loopDelay.disable();
      gcObserver.disconnect();
      return provider.shutdown();
    },
  };
}
