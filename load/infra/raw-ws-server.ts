import { createServer } from 'node:http';
import { WebSocketServer } from 'ws';
import { PROTOCOL } from '../../system/realtime/protocol.ts';

/**
 * The physical anchor of every push figure: a bare `ws` server with nothing of the app.
 * `POST /publish` sends its body, as one text frame, to every open socket (the same
 * per-socket `send` the hub does, with the frame serialized once; `id` is numbered in
 * arrival order, as the change log numbers commits), `GET /health` says
 * it is up, `GET /stats` gives its socket count and memory. A client gets a `hello`
 * on connect, so "ready" means the same as with the app. It accepts the app's
 * subprotocols and ignores the bearer token (no auth: that is the point).
 */
const port = Number(process.env.PORT ?? 8789);
const hostname = process.env.HOST ?? '127.0.0.1';

let sequence = 0;
const server = createServer((req, res) => {
  if (req.method === 'POST' && req.url === '/publish') {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      // ids in arrival order, as the change log gives them (the sender's requests race)
      const frame = JSON.parse(Buffer.concat(chunks).toString()) as { id: number };
      frame.id = ++sequence;
      const text = JSON.stringify(frame);
      let recipients = 0;
      for (const ws of wss.clients) {
        ws.send(text);
        recipients += 1;
      }
      const body = JSON.stringify({ recipients });
      res.writeHead(200, { 'content-type': 'application/json' }).end(body);
    });
    return;
  }
  const body =
    req.url === '/stats'
      ? JSON.stringify({ sockets: wss.clients.size, memory: process.memoryUsage() })
      : JSON.stringify({ status: 'ok' });
  res.writeHead(200, { 'content-type': 'application/json' }).end(body);
});

const wss = new WebSocketServer({
  server,
  path: '/ws',
  perMessageDeflate: false,
  handleProtocols: (protocols) => (protocols.has(PROTOCOL) ? PROTOCOL : false),
});
wss.on('connection', (ws) => {
  ws.on('error', () => ws.terminate());
  ws.send(JSON.stringify({ type: 'hello', connectionId: 'raw', lastEventId: 0 }));
});

server.listen(port, hostname);
process.once('SIGTERM', () => {
  for (const ws of wss.clients) ws.terminate();
  server.close(() => process.exit(0));
});
