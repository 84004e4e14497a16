import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { context, createContextKey, ROOT_CONTEXT } from '@opentelemetry/api';
import { pino } from 'pino';
import { WebSocket } from 'ws';
import { generateWebhookSecret } from '../../fixtures/auth/keys.ts';
import { DEV_AZP, mintSessionToken, type SessionTokenOptions } from '../../fixtures/auth/token.ts';
import { loadEnv } from '../../system/env.ts';
import { type RunningServer, type StartOptions, startServer } from '../../system/node.ts';
import {
  connectRealtime,
  type RealtimeClient,
  type RealtimeClientOptions,
  type WebSocketConstructor,
} from '../../system/realtime/client.ts';
import { BEARER_PROTOCOL_PREFIX, PROTOCOL } from '../../system/realtime/protocol.ts';
import { testKeys } from './harness.ts';

/** The real Node server in-process (real HTTP, real `ws`), with its own file database. */
export interface TestServer extends RunningServer {
  webhookSecret: string;
  wsUrl: string;
  token(options: Omit<SessionTokenOptions, 'privateKeyPem'>): Promise<string>;
  env: Record<string, string>;
}

/** A real pino logger that writes nothing (the server's own type: child loggers included). */
const silent = pino({ level: 'silent' });

export async function startTestServer(
  overrides: Record<string, string> = {},
  startOptions: StartOptions = {},
): Promise<TestServer & { cleanup(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'dataflow-server-'));
  const webhookSecret = overrides.CLERK_WEBHOOK_SIGNING_SECRET ?? generateWebhookSecret();
  const env = {
    DATABASE_URL: `file:${join(dir, 'app.db')}`,
    PORT: '0',
    LOG_LEVEL: 'silent',
    CLERK_JWT_KEY: testKeys().publicKey,
    CLERK_WEBHOOK_SIGNING_SECRET: webhookSecret,
    SHUTDOWN_TIMEOUT_MS: '2000',
    ...overrides,
  };
  const server = await startServer(loadEnv(env), silent, startOptions);
  let closed = false;
  return {
    ...server,
    env,
    webhookSecret,
    wsUrl: `${server.url.replace('http', 'ws')}/ws`,
    token: (options) => mintSessionToken({ privateKeyPem: testKeys().privateKey, ...options }),
    async close() {
      if (closed) return;
      closed = true;
      await server.close();
    },
    async cleanup() {
      if (!closed) {
        closed = true;
        await server.close();
      }
      // the WAL checkpointer's worker closes its connection after close() returns, removing
      // the -wal/-shm files as it does: retry while it finishes (ENOTEMPTY otherwise)
      rmSync(dir, { recursive: true, force: true, maxRetries: 20, retryDelay: 25 });
    },
  };
}

export const NodeWebSocket = WebSocket as unknown as WebSocketConstructor;

/** A realtime client that records everything it receives. */
export function recordingClient(
  options: Omit<RealtimeClientOptions, 'WebSocket'>,
): RealtimeClient & { changes: number[]; resets: string[]; statuses: string[]; errors: string[] } {
  const changes: number[] = [];
  const resets: string[] = [];
  const statuses: string[] = [];
  const errors: string[] = [];
  const client = connectRealtime({
    WebSocket: NodeWebSocket,
    initialBackoffMs: 50,
    maxBackoffMs: 500,
    ...options,
    onChange: (change, at) => {
      changes.push(change.id);
      options.onChange?.(change, at);
    },
    onReset: (reason) => resets.push(reason),
    onStatus: (status) => statuses.push(status),
    onServerError: (e) => errors.push(e.code),
  });
  return Object.assign(client, { changes, resets, statuses, errors });
}

/** Raw `ws` socket with our subprotocol; resolves with the HTTP status when the upgrade is refused. */
export function rawSocket(
  url: string,
  token: string | null,
  headers: Record<string, string> = {},
  protocols: string[] = [PROTOCOL],
): Promise<
  { ws: WebSocket; messages: Array<Record<string, unknown>> } | { refused: number; body: string }
> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(
      url,
      token ? [...protocols, `${BEARER_PROTOCOL_PREFIX}${token}`] : protocols,
      {
        headers,
      },
    );
    const messages: Array<Record<string, unknown>> = [];
    ws.on('message', (data) =>
      messages.push(JSON.parse(data.toString()) as Record<string, unknown>),
    );
    ws.once('open', () => resolve({ ws, messages }));
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => {
        body += c.toString();
      });
      res.on('end', () => resolve({ refused: res.statusCode ?? 0, body }));
    });
    ws.once('error', (error) => reject(error));
  });
}

export async function waitFor(
  check: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
  what = 'condition',
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export { DEV_AZP };

/**
 * Whether an OpenTelemetry context manager carries a value across an await in this
 * process: the app registers none (its stages are handed their parent span), since on
 * Node 20 one taxes every promise of the process.
 */
export async function asyncContextCarries(): Promise<boolean> {
  const key = createContextKey('probe');
  const seen = await context.with(ROOT_CONTEXT.setValue(key, 1), async () => {
    await Promise.resolve();
    return context.active().getValue(key);
  });
  return seen !== undefined;
}
