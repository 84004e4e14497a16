import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { SpanKind } from '@opentelemetry/api';
import { type WebSocket, WebSocketServer } from 'ws';
import { STAGE_ATTRIBUTE, startFromTraceparent } from '../trace.ts';
import type { UpgradeAuthorizer } from './authorize.ts';
import type { Hub } from './hub.ts';
import { PROTOCOL } from './protocol.ts';

/**
 * Node adapter: binds the hub to `ws` on the app's HTTP server at `GET /ws`. The
 * decision to upgrade is made by the runtime-neutral authorizer; refusals are answered
 * on the raw socket with a status and the JSON error shape, before any upgrade.
 */
export interface NodeRealtimeOptions {
  hub: Hub;
  authorize: UpgradeAuthorizer;
  /** Largest client frame; bigger ones close the socket with 1009. */
  maxFrameBytes: number;
  path?: string;
}

export function attachRealtime(server: Server, options: NodeRealtimeOptions): WebSocketServer {
  const path = options.path ?? '/ws';
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: options.maxFrameBytes,
    perMessageDeflate: false,
    // never echo the bearer.<token> subprotocol back
    handleProtocols: (protocols) => (protocols.has(PROTOCOL) ? PROTOCOL : false),
  });

  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', destroyOnError);
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname !== path) {
      refuse(socket, 404, 'not_found', 'no WebSocket endpoint here');
      return;
    }
    const resumeParam = url.searchParams.get('lastEventId');
    const resumeFrom = resumeParam === null ? undefined : Number(resumeParam);
    if (resumeFrom !== undefined && !(Number.isSafeInteger(resumeFrom) && resumeFrom >= 0)) {
      refuse(socket, 400, 'invalid_request', 'lastEventId must be a non-negative integer');
      return;
    }
    // the upgrade joins the caller's trace when it sends one (sampled callers only)
    const span = startFromTraceparent(
      'realtime.connect',
      url.searchParams.get('traceparent'),
      SpanKind.SERVER,
      { [STAGE_ATTRIBUTE]: 'realtime' },
    );
    const headers = new Headers();
    for (const [name, value] of Object.entries(req.headers)) {
      if (typeof value === 'string') headers.set(name, value);
      else if (Array.isArray(value)) headers.set(name, value.join(', '));
    }
    options
      .authorize(new Request(`http://localhost${url.pathname}`, { headers }))
      .then((decision) => {
        span?.setAttribute('http.response.status_code', decision.ok ? 101 : decision.status);
        span?.end();
        if (!decision.ok) {
          refuse(socket, decision.status, decision.code, decision.message);
          return;
        }
        const who = { userId: decision.session.userId, orgId: decision.session.orgId };
        wss.handleUpgrade(req, socket, head, (ws) => bindSocket(options.hub, ws, who, resumeFrom));
      })
      .catch(() => {
        span?.end();
        refuse(socket, 503, 'unavailable', 'could not authorize the connection');
      });
  });
  return wss;
}

/**
 * The socket's lifelong listeners are made here, away from the upgrade handler: a
 * closure keeps its whole enclosing scope alive, and the upgrade's scope holds the
 * request, its headers (with the bearer token) and the first chunk's buffer, about 3 KB
 * per idle socket for as long as the socket lives.
 */
function bindSocket(
  hub: Hub,
  ws: WebSocket,
  who: { userId: string; orgId: string },
  resumeFrom: number | undefined,
): void {
  const connection = hub.connect(
    {
      send: (text) => ws.send(text),
      close: (code, reason) => ws.close(code, reason),
      bufferedAmount: () => ws.bufferedAmount,
    },
    who,
    { resumeFrom },
  );
  ws.on('message', (data, isBinary) => {
    connection.receive(isBinary ? '' : data.toString());
  });
  ws.on('close', () => connection.closed());
  ws.on('error', () => ws.terminate());
}

function destroyOnError(this: Duplex): void {
  this.destroy();
}

const REASONS: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  426: 'Upgrade Required',
  429: 'Too Many Requests',
  503: 'Service Unavailable',
};

function refuse(socket: Duplex, status: number, code: string, message: string): void {
  const body = JSON.stringify({ error: { code, message, requestId: null } });
  socket.end(
    `HTTP/1.1 ${status} ${REASONS[status] ?? 'Error'}\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}
