import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  InMemorySpanExporter,
  SimpleSpanProcessor,
  TracerProvider,
} from '@opentelemetry/sdk-trace';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OtlpJsonFileExporter } from '../../system/telemetry/file-exporter.ts';
import { readTraceFiles } from '../../traces/cli.ts';
import { TraceFileError } from '../../traces/otlp.ts';
import { startTestServer, waitFor } from '../support/server.ts';

describe('an unreachable OTLP collector (black hole: accepts, never answers)', () => {
  let hole: Server;
  const sockets = new Set<Socket>();
  let url = '';

  beforeAll(async () => {
    hole = createServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => {});
    });
    await new Promise<void>((resolve) => hole.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(hole.address() as { port: number }).port}`;
  });
  afterAll(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => hole.close(resolve));
  });

  it('leaves requests unaffected, keeps the queue bounded and counts what it drops', async () => {
    const server = await startTestServer({
      OTEL_TRACES_EXPORTER: 'otlp',
      OTEL_EXPORTER_OTLP_ENDPOINT: url,
      OTEL_TRACES_SAMPLER: 'always_on',
      OTEL_EXPORTER_OTLP_TIMEOUT: '200',
      OTEL_BSP_SCHEDULE_DELAY: '20',
      OTEL_BSP_MAX_QUEUE_SIZE: '32',
      OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '16',
      OTEL_BSP_EXPORT_TIMEOUT: '200',
    });
    try {
      const statuses: number[] = [];
      for (let round = 0; round < 20; round++) {
        const batch = await Promise.all(
          Array.from({ length: 20 }, () => fetch(`${server.url}/health`).then((r) => r.status)),
        );
        statuses.push(...batch);
      }
      expect(statuses).toHaveLength(400);
      expect(new Set(statuses)).toEqual(new Set([200]));
      expect(sockets.size).toBeGreaterThan(0); // the exporter really tried the collector

      const dropped = async () => {
        const text = await (await fetch(`${server.url}/metrics`)).text();
        let total = 0;
        for (const m of text.matchAll(
          /^otel_sdk_processor_span_processed_total\{[^}]*error_type="[^"]+"[^}]*\} (\d+)/gm,
        )) {
          total += Number(m[1]);
        }
        const queue = Number(
          /^otel_sdk_processor_span_queue_size\{[^}]*\} (\d+)/m.exec(text)?.[1] ?? Number.NaN,
        );
        return { total, queue };
      };
      await waitFor(async () => (await dropped()).total > 0, 10_000, 'dropped spans counted');
      const { total, queue } = await dropped();
      expect(total).toBeGreaterThan(0);
      expect(queue).toBeLessThanOrEqual(32);
    } finally {
      await server.cleanup();
    }
  });
});

describe('OTLP/JSON file exporter', () => {
  it('writes lines the analyzer reads, rotates at the size and keeps maxFiles', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dataflow-file-exporter-'));
    try {
      const exporter = new OtlpJsonFileExporter({
        dir,
        prefix: 'test',
        maxBytes: 2000,
        maxFiles: 2,
      });
      const memory = new InMemorySpanExporter();
      const provider = new TracerProvider({
        spanProcessors: [new SimpleSpanProcessor({ exporter: memory })],
      });
      const tracer = provider.getTracer('t');
      for (let i = 0; i < 30; i++) tracer.startSpan(`span-${i}`).end();
      for (const span of memory.getFinishedSpans()) {
        await new Promise((resolve) => exporter.export([span], resolve));
      }
      await exporter.shutdown();
      const files = readdirSync(dir);
      expect(files.length).toBe(2);
      for (const file of files) {
        expect(readFileSync(join(dir, file), 'utf8').length).toBeLessThanOrEqual(2000);
      }
      const spans = readTraceFiles([dir]);
      expect(spans.length).toBeGreaterThan(0);
      expect(spans.length).toBeLessThan(30); // the oldest file was deleted
      expect(spans.at(-1)!.name).toBe('span-29');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('trace files the analyzer refuses', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dataflow-bad-traces-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const refuse = (name: string, text: string) => {
    const file = join(dir, name);
    writeFileSync(file, text);
    try {
      readTraceFiles([file]);
    } catch (error) {
      expect(error).toBeInstanceOf(TraceFileError);
      return (error as Error).message;
    }
    throw new Error(`${name} was accepted`);
  };

  it('names the file and line of malformed JSON', () => {
    expect(refuse('broken.jsonl', '{"resourceSpans":[]}\n{"resourceSp')).toBe(
      `${join(dir, 'broken.jsonl')}:2: malformed JSON (expected one OTLP/JSON export per line)`,
    );
  });
  it('refuses a foreign file (a metrics export)', () => {
    expect(refuse('metrics.jsonl', '{"resourceMetrics":[]}')).toMatch(
      /metrics.jsonl:1: not an OTLP\/JSON trace export/,
    );
  });
  it('the CLI exits 2 with the message, and prints a table for a real capture', () => {
    const bad = spawnSync('npx', ['tsx', 'traces/cli.ts', 'analyze', join(dir, 'nope')], {
      encoding: 'utf8',
    });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/nope: no such file or directory/);
    const usage = spawnSync('npx', ['tsx', 'traces/cli.ts', 'analyse', 'x'], { encoding: 'utf8' });
    expect(usage.status).toBe(2);
    expect(usage.stderr).toMatch(/unknown command "analyse"/);
  });
  it('refuses an empty file and a missing path', () => {
    expect(refuse('empty.jsonl', '\n')).toMatch(/no trace exports/);
    expect(() => readTraceFiles([join(dir, 'nope')])).toThrow(/no such file or directory/);
  });
});
