import { SpanKind } from '@opentelemetry/api';
import { STAGE_ATTRIBUTE, startFromTraceparent } from '../trace.ts';
import {
  BEARER_PROTOCOL_PREFIX,
  type ChangeMessage,
  PROTOCOL,
  type ResetReason,
  type ServerMessage,
} from './protocol.ts';

/**
 * The reconnecting realtime client, shared by tests, the WebSocket load generator and
 * the React client. Runtime-neutral: pass a WebSocket constructor (the browser's, or
 * `ws` on Node 20). It reconnects with capped exponential backoff and full jitter,
 * and resumes from the last event id it processed, so a hub restart loses nothing:
 * either the missed events are replayed in order, or the server says `reset`.
 */

type WebSocketLike = {
  readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
};
export type WebSocketConstructor = new (url: string, protocols: string[]) => WebSocketLike;

export interface RealtimeClientOptions {
  url: string;
  /** The session token (called on every connect, so it can be refreshed). */
  token: () => string | Promise<string>;
  WebSocket: WebSocketConstructor;
  /**
   * A W3C trace context for each connection attempt, sent as the `traceparent` query
   * parameter (a browser cannot set headers on a WebSocket; ids are not secrets), so the
   * upgrade joins the caller's trace.
   */
  traceparent?: () => string;
  /** Resume point for the first connection (e.g. persisted by the app). */
  lastEventId?: number;
  onChange?: (change: ChangeMessage, receivedAt: number) => void;
  /** The server could not replay: refetch, then events continue from `lastEventId`. */
  onReset?: (reason: ResetReason) => void;
  onStatus?: (
    status: 'connecting' | 'open' | 'closed',
    detail?: { code: number; reason: string },
  ) => void;
  onServerError?: (error: { code: string; message: string }) => void;
  /** @default 250 */
  initialBackoffMs?: number;
  /** @default 10000 */
  maxBackoffMs?: number;
  random?: () => number;
}

export interface RealtimeClient {
  /** Id of the last change processed (what a reconnect resumes from). */
  lastEventId(): number;
  send(message: object): void;
  /** Stop for good: no reconnects. */
  close(): void;
  /** Resolves once the connection is open and the hello (and any resume) was received. */
  ready(): Promise<void>;
}

/** Capped exponential backoff with full jitter: uniform in [0, min(cap, base * 2^attempt)]. */
export function backoffDelay(
  attempt: number,
  baseMs: number,
  capMs: number,
  random: () => number,
): number {
  return Math.floor(random() * Math.min(capMs, baseMs * 2 ** attempt));
}

export function connectRealtime(options: RealtimeClientOptions): RealtimeClient {
  const random = options.random ?? Math.random;
  const base = options.initialBackoffMs ?? 250;
  const cap = options.maxBackoffMs ?? 10_000;
  let lastEventId = options.lastEventId ?? 0;
  let hasPosition = options.lastEventId !== undefined;
  let socket: WebSocketLike | null = null;
  let attempt = 0;
  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let readyWaiters: Array<() => void> = [];
  let isReady = false;

  const markReady = () => {
    isReady = true;
    for (const resolve of readyWaiters) resolve();
    readyWaiters = [];
  };

  function applyChange(message: ChangeMessage): void {
    if (message.id <= lastEventId) return; // never apply twice
    lastEventId = message.id;
    hasPosition = true;
    // receipt closes the webhook -> client trace (no-op without a tracer provider)
    startFromTraceparent('realtime.receive', message.traceparent, SpanKind.CONSUMER, {
      [STAGE_ATTRIBUTE]: 'realtime',
      'realtime.change.id': message.id,
    })?.end();
    options.onChange?.(message, Date.now());
  }

  async function open(): Promise<void> {
    if (stopped) return;
    options.onStatus?.('connecting');
    let token: string;
    try {
      token = await options.token();
    } catch {
      return schedule();
    }
    // closed while the token was on its way (a React effect's cleanup, a sign-out)
    if (stopped) return;
    const url = new URL(options.url);
    if (hasPosition) url.searchParams.set('lastEventId', String(lastEventId));
    if (options.traceparent) url.searchParams.set('traceparent', options.traceparent());
    const resuming = hasPosition;
    const ws = new options.WebSocket(url.toString(), [
      PROTOCOL,
      `${BEARER_PROTOCOL_PREFIX}${token}`,
    ]);
    socket = ws;
    ws.onopen = () => {
      attempt = 0;
      options.onStatus?.('open');
    };
    ws.onmessage = (event) => {
      let message: ServerMessage;
      try {
        message = JSON.parse(String(event.data)) as ServerMessage;
      } catch {
        return;
      }
      switch (message.type) {
        case 'hello':
          // a resuming connection is ready at `synced` or `reset`, which follow the replay
          if (!resuming) {
            lastEventId = message.lastEventId;
            hasPosition = true;
            markReady();
          }
          return;
        case 'change':
          applyChange(message);
          return;
        case 'changes':
          for (const change of message.changes) applyChange(change);
          return;
        case 'synced':
          markReady();
          return;
        case 'reset':
          lastEventId = message.lastEventId;
          hasPosition = true;
          options.onReset?.(message.reason);
          markReady();
          return;
        case 'ping':
          ws.send(JSON.stringify({ type: 'pong', t: message.t }));
          return;
        case 'error':
          options.onServerError?.({ code: message.code, message: message.message });
          return;
        default:
          return;
      }
    };
    ws.onerror = () => {};
    ws.onclose = (event) => {
      socket = null;
      isReady = false;
      options.onStatus?.('closed', { code: event.code, reason: event.reason });
      // 4403: access to the org ended; reconnecting would only be refused
      if (event.code === 4403) stopped = true;
      if (!stopped) schedule();
    };
  }

  function schedule(): void {
    if (stopped) return;
    const delay = backoffDelay(attempt, base, cap, random);
    attempt += 1;
    timer = setTimeout(() => void open(), delay);
  }

  void open();

  return {
    lastEventId: () => lastEventId,
    send(message) {
      socket?.send(JSON.stringify(message));
    },
    close() {
      stopped = true;
      if (timer) clearTimeout(timer);
      socket?.close(1000, 'client closed');
    },
    ready() {
      if (isReady) return Promise.resolve();
      return new Promise((resolve) => readyWaiters.push(resolve));
    },
  };
}
