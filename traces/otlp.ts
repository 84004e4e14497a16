/**
 * Reading OTLP/JSON trace exports: our file exporter's lines, or any OpenTelemetry
 * Collector `file` exporter output (one `ExportTraceServiceRequest` per line). A file
 * that is not that fails with its name and line, never with a half-read report.
 */

export type AttributeValue = string | number | boolean;

export interface FlatSpan {
  traceId: string;
  spanId: string;
  /** Empty for a root span. */
  parentSpanId: string;
  name: string;
  /** OTLP SpanKind: 1 internal, 2 server, 3 client, 4 producer, 5 consumer. */
  kind: number;
  /** Milliseconds since the epoch (fractional). */
  start: number;
  end: number;
  attributes: Record<string, AttributeValue>;
  service: string;
}

export class TraceFileError extends Error {
  override readonly name = 'TraceFileError';
}

interface OtlpAnyValue {
  stringValue?: string;
  intValue?: number | string;
  doubleValue?: number;
  boolValue?: boolean;
}
interface OtlpKeyValue {
  key: string;
  value?: OtlpAnyValue;
}

/** Parses the text of one file (`name` is for messages). */
export function parseOtlpJsonLines(text: string, name: string): FlatSpan[] {
  const spans: FlatSpan[] = [];
  const lines = text.split('\n');
  let sawExport = false;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '') continue;
    const where = `${name}:${i + 1}`;
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      throw new TraceFileError(`${where}: malformed JSON (expected one OTLP/JSON export per line)`);
    }
    const resourceSpans = (parsed as { resourceSpans?: unknown })?.resourceSpans;
    if (!Array.isArray(resourceSpans)) {
      throw new TraceFileError(
        `${where}: not an OTLP/JSON trace export (no "resourceSpans" array); metrics or logs exports are not traces`,
      );
    }
    sawExport = true;
    for (const rs of resourceSpans) {
      const service = String(attributesOf(rs?.resource?.attributes)['service.name'] ?? 'unknown');
      for (const ss of asArray(rs?.scopeSpans ?? rs?.instrumentationLibrarySpans)) {
        for (const raw of asArray(ss?.spans)) spans.push(flatten(raw, service, where));
      }
    }
  }
  if (!sawExport) throw new TraceFileError(`${name}: no trace exports in this file`);
  return spans;
}

function flatten(raw: Record<string, unknown>, service: string, where: string): FlatSpan {
  const traceId = raw.traceId;
  const spanId = raw.spanId;
  if (typeof traceId !== 'string' || typeof spanId !== 'string' || typeof raw.name !== 'string') {
    throw new TraceFileError(`${where}: a span without traceId, spanId or name`);
  }
  const start = nanosToMs(raw.startTimeUnixNano, where);
  const end = nanosToMs(raw.endTimeUnixNano, where);
  return {
    traceId,
    spanId,
    parentSpanId: typeof raw.parentSpanId === 'string' ? raw.parentSpanId : '',
    name: raw.name,
    kind: typeof raw.kind === 'number' ? raw.kind : 0,
    start,
    end: Math.max(start, end),
    attributes: attributesOf(raw.attributes),
    service,
  };
}

function nanosToMs(value: unknown, where: string): number {
  if (typeof value !== 'string' && typeof value !== 'number') {
    throw new TraceFileError(`${where}: a span without startTimeUnixNano/endTimeUnixNano`);
  }
  // split to keep sub-millisecond precision: nanosecond epochs exceed 2^53
  const digits = String(value);
  if (!/^\d+$/.test(digits)) throw new TraceFileError(`${where}: bad timestamp ${digits}`);
  const ms = digits.length > 6 ? Number(digits.slice(0, -6)) : 0;
  const fraction = Number(digits.slice(-6)) / 1e6;
  return ms + fraction;
}

function attributesOf(list: unknown): Record<string, AttributeValue> {
  const out: Record<string, AttributeValue> = {};
  for (const kv of asArray(list) as unknown as OtlpKeyValue[]) {
    const v = kv?.value;
    if (!v || typeof kv.key !== 'string') continue;
    if (v.stringValue !== undefined) out[kv.key] = v.stringValue;
    else if (v.intValue !== undefined) out[kv.key] = Number(v.intValue);
    else if (v.doubleValue !== undefined) out[kv.key] = v.doubleValue;
    else if (v.boolValue !== undefined) out[kv.key] = v.boolValue;
  }
  return out;
}

function asArray(value: unknown): Array<Record<string, unknown>> {
  return Array.isArray(value) ? value : [];
}
