import { createServer } from 'node:http';
import { answerOtlpExport } from './otlp-response.ts';

// A stand-in OpenTelemetry collector for overhead runs: accepts OTLP/HTTP, answers 200,
// keeps nothing (so the app pays the real export cost and the sink stays cheap).
let bytes = 0;
createServer((req, res) => {
  if (req.method === 'GET') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ status: 'ok', bytes }));
    return;
  }
  req.on('data', (chunk: Buffer) => {
    bytes += chunk.length;
  });
  req.on('end', () => answerOtlpExport(req, res));
}).listen(Number(process.env.PORT ?? 4318), process.env.HOST ?? '127.0.0.1');
