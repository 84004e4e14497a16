import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { answerOtlpExport } from '../../load/infra/otlp-response.ts';

export interface OtlpPost {
  path: string;
  type: string;
  body: Buffer;
}

/**
 * A real HTTP server standing in for an OpenTelemetry collector: it keeps every post (path,
 * content type, raw bytes) and answers 200, so tests read exactly what an exporter sent.
 */
export async function startOtlpCollector() {
  const posts: OtlpPost[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      posts.push({
        path: req.url ?? '',
        type: req.headers['content-type'] ?? '',
        body: Buffer.concat(chunks),
      });
      answerOtlpExport(req, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    posts,
    traces: () => posts.filter((p) => p.path === '/v1/traces'),
    metrics: () => posts.filter((p) => p.path === '/v1/metrics'),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
