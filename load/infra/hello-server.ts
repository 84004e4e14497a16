import { createServer } from 'node:http';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';

/**
 * The reference points of the HTTP figures: a JSON hello with no framework at all
 * (`HELLO=node`, the default), and the same on bare Hono over @hono/node-server
 * (`HELLO=hono`), the app's own runtime binding without the app. `HELLO_BYTES=n`
 * makes the body a JSON document of exactly n bytes: the bare cost of sending what a
 * route sends.
 */
const port = Number(process.env.PORT ?? 8788);
const hostname = process.env.HOST ?? '127.0.0.1';
const size = Number(process.env.HELLO_BYTES ?? 0);
const body =
  size > 20 ? JSON.stringify({ data: 'x'.repeat(size - 11) }) : JSON.stringify({ status: 'ok' });
if (process.env.HELLO === 'hono') {
  const app = new Hono().get('/', (c) => c.json({ status: 'ok' }));
  app.get('/health', (c) => c.json({ status: 'ok' }));
  serve({ fetch: app.fetch, port, hostname });
} else {
  createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
    res.end(body);
  }).listen(port, hostname);
}
