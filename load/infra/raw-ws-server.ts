import { createServer } from 'node:http';
import { type WebSocket, WebSocketServer } from 'ws';
import { PROTOCOL } from '../../system/realtime/protocol.ts';

/**
 * The physical anchor of every push figure: a bare `ws` server with nothing of the app.
 * `POST /publish` sends its body, as one text frame, to every open socket (the same
 * per-socket `send` the hub does, with the frame serialized once; `id` is numbered in
 * arrival order, as the change log numbers commits; `?windowMs=` batches as the hub does), `GET /health` says
 * it is up, `GET /stats` gives its socket count and memory. `?topic=` on both the socket
 * URL and `/publish` keeps several fleets apart, like the hub's orgs. A client gets a `hello`
 * on connect, so "ready" means the same as with the app. It accepts the app's
 * subprotocols and ignores the bearer token (no auth: that is the point).
 */
const port = Number(process.env.PORT ?? 8789);
const hostname = process.env.HOST ?? '127.0.0.1';

let sequence = 0;

/** Sockets per `?topic=` of their URL: several fleets can share the server, apart. */
const topics = new Map<string, Set<WebSocket>>();

function broadcast(topic: string, text: string) {
  for (const ws of topics.get(topic) ?? []) ws.send(text);
}

/**
 * `?windowMs=n`: the hub's frame window, bare: the first frame goes at once, frames
 * within n ms of the last send wait for the window's end and go as one `changes` frame.
 */
const outboxes = new Map<
  string,
  { frames: string[]; timer: NodeJS.Timeout | null; lastFlush: number }
>();
function flush(topic: string) {
  const box = outboxes.get(topic)!;
  box.timer = null;
  const frames = box.frames;
  box.frames = [];
  if (frames.length === 1) broadcast(topic, frames[0]!);
  else if (frames.length > 1)
    broadcast(topic, `{"type":"changes","changes":[${frames.join(',')}]}`);
  box.lastFlush = performance.now(); // as the hub: the window starts when the frame is written
}
function publish(topic: string, text: string, windowMs: number) {
  if (windowMs <= 0) return broadcast(topic, text);
  let box = outboxes.get(topic);
  if (!box) {
    box = { frames: [], timer: null, lastFlush: Number.NEGATIVE_INFINITY };
    outboxes.set(topic, box);
  }
  box.frames.push(text);
  if (box.timer !== null) return;
  const wait = box.lastFlush + windowMs - performance.now();
  if (wait <= 0) flush(topic);
  else box.timer = setTimeout(() => flush(topic), wait);
}

const server = createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://localhost');
  if (req.method === 'POST' && url.pathname === '/publish') {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      // ids in arrival order, as the change log gives them (the sender's requests race)
      const frame = JSON.parse(Buffer.concat(chunks).toString()) as { id: number };
      frame.id = ++sequence;
      const topic = url.searchParams.get('topic') ?? '';
      publish(topic, JSON.stringify(frame), Number(url.searchParams.get('windowMs') ?? 0));
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
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
wss.on('connection', (ws, req) => {
  const topic = new URL(req.url ?? '/', 'http://localhost').searchParams.get('topic') ?? '';
  let sockets = topics.get(topic);
  if (!sockets) {
    sockets = new Set();
    topics.set(topic, sockets);
  }
  sockets.add(ws);
  ws.on('close', () => sockets.delete(ws));
  ws.on('error', () => ws.terminate());
  ws.send(JSON.stringify({ type: 'hello', connectionId: 'raw', lastEventId: 0 }));
});

server.listen(port, hostname);
process.once('SIGTERM', () => {
  for (const ws of wss.clients) ws.terminate();
  server.close(() => process.exit(0));
});
