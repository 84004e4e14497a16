import type { Meter } from '@opentelemetry/api';
import type { BoundMetrics } from './bound-metrics.ts';

/**
 * The instruments. The app, levers and sync expose plain hooks; this module turns them
 * into metrics, on any runtime (the Node process's own are in node-runtime-metrics.ts). Names are defined once, here, and listed in docs/telemetry.md (Prometheus
 * form: dots become underscores, counters gain `_total`). Labels are bounded: route
 * templates, never raw paths or ids.
 */
/** The meter every instrument of the app is created on, on every runtime. */
export const METER_NAME = 'dataflow';

export const METRICS = {
  httpDuration: 'http.server.request.duration',
  httpActive: 'http.server.active_requests',
  dbOperationDuration: 'db.client.operation.duration',
  dbRoundTrips: 'dataflow.db.round_trips',
  dbQueriesPerRequest: 'dataflow.db.queries_per_request',
  dbGroupCommitBatches: 'dataflow.db.group_commit.batches',
  cacheLookups: 'dataflow.cache.lookups',
  cacheInvalidations: 'dataflow.cache.invalidations',
  batchSize: 'dataflow.batch.size',
  batchWait: 'dataflow.batch.wait',
  batchRetries: 'dataflow.batch.retries',
  coalesceRequests: 'dataflow.coalesce.requests',
  breakerState: 'dataflow.breaker.state',
  webhookEvents: 'sync.webhook.events',
  webhookLag: 'sync.webhook.lag',
  webhookApply: 'sync.webhook.apply.duration',
  deadLetters: 'sync.dead_letters',
  wsConnections: 'realtime.connections',
  wsMessagesSent: 'realtime.messages.sent',
  wsMessagesDropped: 'realtime.messages.dropped',
  wsBuffered: 'realtime.buffered',
  wsDeliveryLag: 'realtime.delivery.lag',
  eventLoopDelay: 'nodejs.eventloop.delay.p99',
  heapUsed: 'process.memory.heap_used',
  rss: 'process.memory.rss',
  gcDuration: 'nodejs.gc.duration',
  /** Emitted by the OpenTelemetry SDK itself (self-observability): dropped spans have `error_type`. */
  spansProcessed: 'otel.sdk.processor.span.processed',
} as const;

/** Seconds buckets that resolve sub-millisecond reads up to multi-second outliers. */
const SECONDS_BUCKETS = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

export interface Instruments {
  /** One finished request, by route template. */
  onRequest(event: {
    method: string;
    route: string;
    status: number;
    durationMs: number;
    dbQueries: number;
  }): void;
  onActive(delta: 1 | -1): void;
  onDbOperation(event: { summary: string; durationMs: number; ok: boolean }): void;
  /** A group commit: how many concurrent write batches shared its transaction. */
  onGroupCommit(batches: number): void;
  onCacheLookup(event: { level: string; result: string }): void;
  onCacheInvalidate(event: { mode: string; entries: number }): void;
  onBatch(event: {
    loader: string;
    size: number;
    waitMs: number;
    attempts: number;
    ok: boolean;
  }): void;
  onCoalesce(event: { role: string; route: string }): void;
  onBreakerState(state: 'closed' | 'open' | 'half-open'): void;
  /** `type` is already a bounded label (sync folds unknown types into `other`). */
  onWebhook(event: { type: string; outcome: string; lagMs: number; applyMs: number }): void;
  onBroadcast(event: { lagMs: number; recipients: number }): void;
  /** Sampled at collection time. */
  observeHub(
    stats: () => { connections: number; sent: number; dropped: number; bufferedBytes: number },
  ): void;
}

/**
 * `bound` carries the series recorded per request and per database round trip (bound
 * attribute sets, see bound-metrics.ts); the rest are the SDK's own instruments.
 */
export function createInstruments(meter: Meter, bound: BoundMetrics): Instruments {
  const httpDuration = bound.histogram(METRICS.httpDuration, {
    unit: 's',
    description: 'HTTP server request duration, by route template',
    boundaries: SECONDS_BUCKETS,
  });
  const httpActive = bound
    .upDownCounter(METRICS.httpActive, { description: 'requests in flight' })
    .bind('', () => ({}));
  const roundTrips = bound
    .counter(METRICS.dbRoundTrips, { description: 'database round trips' })
    .bind('', () => ({}));
  const dbDuration = bound.histogram(METRICS.dbOperationDuration, {
    unit: 's',
    description: 'database round-trip duration, by operation summary',
    boundaries: SECONDS_BUCKETS,
  });
  const queriesPerRequest = bound.histogram(METRICS.dbQueriesPerRequest, {
    description: 'database round trips per request, by route template',
    boundaries: [0, 1, 2, 3, 5, 10, 20, 50, 100, 200],
  });
  const groupCommitBatches = bound
    .histogram(METRICS.dbGroupCommitBatches, {
      description: 'write batches per group commit (concurrent writes sharing one transaction)',
      boundaries: [1, 2, 3, 5, 10, 20, 50, 100, 200, 500],
    })
    .bind('', () => ({}));
  const batchRetries = meter.createCounter(METRICS.batchRetries, {
    description: 'batch dispatch retries after a transient error',
  });
  const webhookApply = bound.histogram(METRICS.webhookApply, {
    unit: 's',
    description: 'webhook write batch (dedupe, apply, change-log append)',
    boundaries: SECONDS_BUCKETS,
  });
  const deadLetters = bound
    .counter(METRICS.deadLetters, { description: 'webhook deliveries kept as dead letters' })
    .bind('', () => ({}));
  const deliveryLag = bound
    .histogram(METRICS.wsDeliveryLag, {
      unit: 's',
      description: 'change commit to WebSocket fan-out',
      boundaries: SECONDS_BUCKETS,
    })
    .bind('', () => ({}));
  const cacheLookups = bound.counter(METRICS.cacheLookups, {
    description: 'cache lookups by level and result',
  });
  const invalidations = bound.counter(METRICS.cacheInvalidations, {
    description: 'cache entries invalidated, by mode',
  });
  const batchSize = bound.histogram(METRICS.batchSize, {
    description: 'keys per batch dispatch',
    boundaries: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000],
  });
  const batchWait = bound.histogram(METRICS.batchWait, {
    unit: 's',
    description: 'time from first key to dispatch',
    boundaries: SECONDS_BUCKETS,
  });
  const coalesce = bound.counter(METRICS.coalesceRequests, {
    description: 'coalescing roles per request',
  });
  let breaker = 0;
  meter
    .createObservableGauge(METRICS.breakerState, {
      description: 'database breaker: 0 closed, 1 half-open, 2 open',
    })
    .addCallback((result) => result.observe(breaker, { 'dataflow.breaker': 'db' }));
  const webhookEvents = bound.counter(METRICS.webhookEvents, {
    description: 'webhook deliveries by type and outcome',
  });
  const webhookLag = bound
    .histogram(METRICS.webhookLag, {
      unit: 's',
      description: 'svix timestamp to commit',
      boundaries: [0.01, 0.05, 0.1, 0.5, 1, 5, 30, 60, 300, 3600],
    })
    .bind('', () => ({}));
  let hubStats:
    | (() => { connections: number; sent: number; dropped: number; bufferedBytes: number })
    | undefined;
  const wsConnections = meter.createObservableGauge(METRICS.wsConnections, {
    description: 'open WebSocket connections',
  });
  const wsSent = meter.createObservableCounter(METRICS.wsMessagesSent, {
    description: 'change frames written',
  });
  const wsDropped = meter.createObservableCounter(METRICS.wsMessagesDropped, {
    description: 'change frames dropped by backpressure',
  });
  const wsBuffered = meter.createObservableGauge(METRICS.wsBuffered, {
    unit: 'By',
    description: 'bytes queued in the process for all sockets, not yet written to the network',
  });
  // one walk over the sockets per collection, not one per instrument
  meter.addBatchObservableCallback(
    (observer) => {
      const stats = hubStats?.();
      observer.observe(wsConnections, stats?.connections ?? 0);
      observer.observe(wsSent, stats?.sent ?? 0);
      observer.observe(wsDropped, stats?.dropped ?? 0);
      observer.observe(wsBuffered, stats?.bufferedBytes ?? 0);
    },
    [wsConnections, wsSent, wsDropped, wsBuffered],
  );

  return {
    onRequest: (e) => {
      httpDuration
        .bind(`${e.method} ${e.route} ${e.status}`, () => ({
          'http.request.method': e.method,
          'http.route': e.route,
          'http.response.status_code': e.status,
        }))
        .record(e.durationMs / 1000);
      queriesPerRequest.bind(e.route, () => ({ 'http.route': e.route })).record(e.dbQueries);
    },
    onActive: (delta) => httpActive.add(delta),
    onDbOperation: (e) => {
      roundTrips.add(1);
      dbDuration
        .bind(e.ok ? e.summary : `${e.summary}\u0000error`, () => ({
          'db.system.name': 'sqlite',
          'db.query.summary': e.summary,
          ...(e.ok ? {} : { 'error.type': 'db_error' }),
        }))
        .record(e.durationMs / 1000);
    },
    onGroupCommit: (batches) => groupCommitBatches.record(batches),
    onCacheLookup: (e) =>
      cacheLookups
        .bind(`${e.level} ${e.result}`, () => ({
          'dataflow.cache.level': e.level,
          'dataflow.cache.result': e.result,
        }))
        .add(1),
    onCacheInvalidate: (e) =>
      invalidations.bind(e.mode, () => ({ 'dataflow.cache.invalidation': e.mode })).add(e.entries),
    onBatch: (e) => {
      const key = `${e.loader} ${e.ok}`;
      const attributes = () => ({ 'dataflow.loader': e.loader, 'dataflow.ok': e.ok });
      batchSize.bind(key, attributes).record(e.size);
      batchWait.bind(key, attributes).record(e.waitMs / 1000);
      if (e.attempts > 1) batchRetries.add(e.attempts - 1, { 'dataflow.loader': e.loader });
    },
    onCoalesce: (e) =>
      coalesce
        .bind(`${e.role} ${e.route}`, () => ({
          'dataflow.coalesce.role': e.role,
          'http.route': e.route,
        }))
        .add(1),
    onBreakerState: (state) => {
      breaker = state === 'closed' ? 0 : state === 'half-open' ? 1 : 2;
    },
    onWebhook: (e) => {
      webhookEvents
        .bind(`${e.type} ${e.outcome}`, () => ({
          'sync.event.type': e.type,
          'sync.outcome': e.outcome,
        }))
        .add(1);
      if (e.outcome === 'applied') webhookLag.record(Math.max(0, e.lagMs) / 1000);
      if (e.outcome === 'dead_letter') deadLetters.add(1);
      webhookApply.bind(e.outcome, () => ({ 'sync.outcome': e.outcome })).record(e.applyMs / 1000);
    },
    onBroadcast: (e) => deliveryLag.record(Math.max(0, e.lagMs) / 1000),
    observeHub: (stats) => {
      hubStats = stats;
    },
  };
}
