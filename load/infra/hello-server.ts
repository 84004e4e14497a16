import { AsyncLocalStorage } from 'node:async_hooks';
import { createServer, type ServerResponse } from 'node:http';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';

/**
 * The reference points of the HTTP figures: a JSON hello with no framework at all
 * (`HELLO=node`, the default), and the same on bare Hono over @hono/node-server
 * (`HELLO=hono`), the app's own runtime binding without the app. `HELLO_BYTES=n`
 * makes the body a JSON document of exactly n bytes: the bare cost of sending what a
 * route sends. `HELLO=node-als` is the bare hello with each request run inside an
 * `AsyncLocalStorage` (what OpenTelemetry's context manager does): on Node 20 that turns
 * on async hooks for every promise and async resource of the process, a cost the app
 * pays for per-request context whatever it does.
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
  const hello = (res: ServerResponse) => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
    res.end(body);
  };
  const storage = process.env.HELLO === 'node-als' ? new AsyncLocalStorage<object>() : undefined;
  createServer(
    storage
      ? (_req, res) => storage.run({}, hello, res)
      : (_req, res) => {
          hello(res);
        },
  ).listen(port, hostname);
}

// a normal exit on SIGTERM, so `--cpu-prof` writes the anchor's profile too
process.once('SIGTERM', () => process.exit(0));
