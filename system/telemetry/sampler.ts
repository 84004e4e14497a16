import {
  ROOT_CONTEXT,
  SamplingDecision,
  type Span,
  SpanKind,
  type SpanOptions,
  type Tracer,
} from '@opentelemetry/api';
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  type IdGenerator,
  ParentBasedSampler,
  RandomIdGenerator,
  type Sampler,
  TraceIdRatioBasedSampler,
} from '@opentelemetry/sdk-trace';
import type { RootSpanStarter } from './http.ts';

/** `OTEL_TRACES_SAMPLER` values (the standard names). */
export type SamplerName =
  | 'always_on'
  | 'always_off'
  | 'traceidratio'
  | 'parentbased_always_on'
  | 'parentbased_always_off'
  | 'parentbased_traceidratio';

export function createSampler(name: SamplerName, ratio: number): Sampler {
  switch (name) {
    case 'always_on':
      return new AlwaysOnSampler();
    case 'always_off':
      return new AlwaysOffSampler();
    case 'traceidratio':
      return new TraceIdRatioBasedSampler(ratio);
    case 'parentbased_always_on':
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
    case 'parentbased_always_off':
      return new ParentBasedSampler({ root: new AlwaysOffSampler() });
    case 'parentbased_traceidratio':
      return new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(ratio) });
  }
}

/**
 * Sampling for a request that arrives without a `traceparent`, decided before any span
 * exists: a dropped request then costs one random trace id and the sampler's comparison,
 * not a non-recording span, its ids and a context to carry it (at the production
 * default of 10%, nine requests in ten). The decision is the configured sampler's own,
 * on a trace id drawn first; a kept request's span is given that same id through
 * `idGenerator` (pass it to the tracer provider), so the SDK's sampler, deterministic in
 * the trace id for a root span, decides the same and the sampled share is the
 * configured one.
 */
export function rootSampling(sampler: Sampler): {
  idGenerator: IdGenerator;
  startRootSpan: RootSpanStarter;
} {
  const ids = new PresetTraceIds();
  return {
    idGenerator: ids,
    startRootSpan(tracer: Tracer, name: string, options: SpanOptions): Span | undefined {
      const traceId = ids.generateTraceId();
      const { decision } = sampler.shouldSample(
        ROOT_CONTEXT,
        traceId,
        name,
        options.kind ?? SpanKind.INTERNAL,
        options.attributes ?? {},
        [],
      );
      if (decision === SamplingDecision.NOT_RECORD) return undefined;
      ids.preset(traceId);
      // startSpan is synchronous: the preset id is taken by this span, never another
      return tracer.startSpan(name, options, ROOT_CONTEXT);
    },
  };
}

/** Random ids, except that the next trace id can be set (for the span of a kept request). */
class PresetTraceIds implements IdGenerator {
  readonly #random = new RandomIdGenerator();
  #next: string | undefined;
  preset(traceId: string): void {
    this.#next = traceId;
  }
  generateTraceId(): string {
    const preset = this.#next;
    if (preset === undefined) return this.#random.generateTraceId();
    this.#next = undefined;
    return preset;
  }
  generateSpanId(): string {
    return this.#random.generateSpanId();
  }
}
