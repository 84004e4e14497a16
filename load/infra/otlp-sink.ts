import { createServer } from 'node:http';

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
  // an empty Export*ServiceResponse in the request's encoding (`{}` is not protobuf: an
  // exporter would log every export as a response it cannot read)
  req.on('end', () => {
    const protobuf = req.headers['content-type'] === 'application/x-protobuf';
    res.writeHead(200, {
      'content-type': protobuf ? 'application/x-protobuf' : 'application/json',
    });
    res.end(protobuf ? '' : '{}');
  });
}).listen(Number(process.env.PORT ?? 4318), process.env.HOST ?? '127.0.0.1');
