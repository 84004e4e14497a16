import { monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';
import type { Meter } from '@opentelemetry/api';
import { METRICS } from './metrics.ts';

/**
 * The Node process's own metrics: event-loop delay (p99 over the scrape interval), heap,
 * RSS, GC pauses. Node only (`node:perf_hooks`, `process`); a Worker's isolate has none of
 * them. Returns what stops the observers.
 */
export function observeNodeRuntime(meter: Meter): () => void {
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

  return () => {
    loopDelay.disable();
    gcObserver.disconnect();
  };
}
