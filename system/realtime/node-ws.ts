import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
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
    socket.on('error', () => socket.destroy());
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
    const headers = new Headers();
    for (const [name, value] of Object.entries(req.headers)) {
      if (typeof value === 'string') headers.set(name, value);
      else if (Array.isArray(value)) headers.set(name, value.join(', '));
    }
    options
      .authorize(new Request(`http://localhost${url.pathname}`, { headers }))
      .then((decision) => {
        if (!decision.ok) {
          refuse(socket, decision.status, decision.code, decision.message);
          return;
        }
        wss.handleUpgrade(req, socket, head, (ws) => {
          const connection = options.hub.connect(
            {
              send: (text) => ws.send(text),
              close: (code, reason) => ws.close(code, reason),
              bufferedAmount: () => ws.bufferedAmount,
            },
            { userId: decision.session.userId, orgId: decision.session.orgId },
            { resumeFrom },
          );
          ws.on('message', (data, isBinary) => {
            connection.receive(isBinary ? '' : data.toString());
          });
          ws.on('close', () => connection.closed());
          ws.on('error', () => ws.terminate());
        });
      })
      .catch(() => refuse(socket, 503, 'unavailable', 'could not authorize the connection'));
  });
  return wss;
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
