import { SpanKind, trace } from '@opentelemetry/api';
import {
  InMemorySpanExporter,
  SimpleSpanProcessor,
  TracerProvider,
} from '@opentelemetry/sdk-trace';
import { describe, expect, it } from 'vitest';
import { createSampler, rootSampling, type SamplerName } from './sampler.ts';

const OPTIONS = { kind: SpanKind.SERVER, attributes: { 'http.request.method': 'GET' } };

function setup(name: SamplerName, ratio: number) {
  const sampler = createSampler(name, ratio);
  const { idGenerator, startRootSpan } = rootSampling(sampler);
  const exporter = new InMemorySpanExporter();
  const provider = new TracerProvider({
    sampler,
    idGenerator,
    spanProcessors: [new SimpleSpanProcessor({ exporter })],
  });
  const tracer = provider.getTracer('test');
  return { start: () => startRootSpan(tracer, 'GET', OPTIONS), exporter };
}

describe('rootSampling: the decision before any span exists', () => {
  it('keeps the configured share, and every kept span is one the SDK records', () => {
    const { start, exporter } = setup('parentbased_traceidratio', 0.25);
    const n = 4000;
    let kept = 0;
    const traceIds = new Set<string>();
    for (let i = 0; i < n; i++) {
      const span = start();
      if (!span) continue;
      kept++;
      // the SDK's sampler saw the same trace id and agreed: a recording, sampled span
      expect(span.isRecording()).toBe(true);
      expect(span.spanContext().traceFlags & 1).toBe(1);
      traceIds.add(span.spanContext().traceId);
      span.end();
    }
    // binomial(4000, 0.25): mean 1000, sd 27; six sd either side
    expect(kept).toBeGreaterThan(1000 - 165);
    expect(kept).toBeLessThan(1000 + 165);
    expect(traceIds.size).toBe(kept);
    for (const id of traceIds)
      expect(trace.isSpanContextValid({ traceId: id, spanId: '1'.repeat(16), traceFlags: 1 })).toBe(
        true,
      );
    expect(exporter.getFinishedSpans()).toHaveLength(kept);
  });

  it('always_off keeps nothing and always_on everything', () => {
    const off = setup('always_off', 1);
    const on = setup('parentbased_always_on', 1);
    for (let i = 0; i < 50; i++) {
      expect(off.start()).toBeUndefined();
      on.start()!.end();
    }
    expect(on.exporter.getFinishedSpans()).toHaveLength(50);
    expect(off.exporter.getFinishedSpans()).toHaveLength(0);
  });

  it('a preset trace id goes to the kept span only: the next span draws its own', () => {
    const { start } = setup('parentbased_always_on', 1);
    const ids = Array.from({ length: 20 }, () => {
      const span = start()!;
      span.end();
      return span.spanContext().traceId;
    });
    expect(new Set(ids).size).toBe(20);
  });
});
