import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { appendFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type ExportResult, ExportResultCode } from '@opentelemetry/core';
import { JsonTraceSerializer } from '@opentelemetry/otlp-transformer';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace';

/**
 * Span exporter for local runs: one OTLP/JSON `ExportTraceServiceRequest` per line (the
 * format of the OpenTelemetry Collector's file exporter, so the trace analyzer reads
 * either). Files rotate at `maxBytes`; only the newest `maxFiles` of this process are
 * kept, so disk use is bounded. Writes are sequential and off the request path (the
 * batch processor calls `export`).
 */
export interface FileExporterOptions {
  dir: string;
  /** File name prefix (the service name). */
  prefix: string;
  maxBytes: number;
  maxFiles: number;
}

export class OtlpJsonFileExporter implements SpanExporter {
  private readonly options: FileExporterOptions;
  private readonly stem: string;
  private sequence = 0;
  private bytes = 0;
  private writing: Promise<void> = Promise.resolve();
  private stopped = false;

  constructor(options: FileExporterOptions) {
    this.options = options;
    this.stem = `${options.prefix}-${new Date().toISOString().replace(/[:.]/g, '-')}-${process.pid}`;
    mkdirSync(options.dir, { recursive: true });
  }

  /** The file being written now. */
  get currentFile(): string {
    return join(this.options.dir, `${this.stem}-${this.sequence}.jsonl`);
  }

  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    if (this.stopped) {
      done({ code: ExportResultCode.FAILED, error: new Error('exporter is shut down') });
      return;
    }
    const line = `${new TextDecoder().decode(JsonTraceSerializer.serializeRequest(spans))}\n`;
    this.writing = this.writing.then(async () => {
      try {
        if (this.bytes > 0 && this.bytes + line.length > this.options.maxBytes) this.rotate();
        await appendFile(this.currentFile, line);
        this.bytes += line.length;
        done({ code: ExportResultCode.SUCCESS });
      } catch (error) {
        done({ code: ExportResultCode.FAILED, error: error as Error });
      }
    });
  }

  private rotate(): void {
    this.sequence += 1;
    this.bytes = 0;
    const mine = readdirSync(this.options.dir)
      .filter((name) => name.startsWith(`${this.stem}-`) && name.endsWith('.jsonl'))
      .map((name) => ({ name, n: Number(name.slice(this.stem.length + 1, -'.jsonl'.length)) }))
      .sort((a, b) => a.n - b.n);
    // the new file is about to exist: keep maxFiles - 1 of the old ones
    for (const old of mine.slice(0, Math.max(0, mine.length - (this.options.maxFiles - 1)))) {
      rmSync(join(this.options.dir, old.name), { force: true });
    }
  }

  forceFlush(): Promise<void> {
    return this.writing;
  }

  async shutdown(): Promise<void> {
    this.stopped = true;
    await this.writing;
  }
}
