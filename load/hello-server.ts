import { createServer } from 'node:http';

// The reference point: a bare node:http JSON hello, with no framework at all.
const body = JSON.stringify({ status: 'ok' });
createServer((_req, res) => {
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
  res.end(body);
}).listen(Number(process.env.PORT ?? 8788), process.env.HOST ?? '127.0.0.1');
