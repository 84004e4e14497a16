import type { ErrorBody } from '../api/errors.ts';
import type { ClientConfig } from './config.ts';

/** An API answer that is not 2xx: the stable JSON error body's code and message. */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface ApiClient {
  get<T>(path: string): Promise<T>;
  send<T>(method: 'POST' | 'PATCH' | 'DELETE', path: string, body?: unknown): Promise<T>;
}

/** Every request the client makes, for the harness (counted from the browser too). */
export type RequestListener = (event: { method: string; path: string; batched: number }) => void;

/**
 * The API over `fetch`, same origin. Each request carries the session token as a bearer
 * header (never in a URL) and a fresh W3C `traceparent`, so a browser action and its
 * server trace join. With batching on, GETs issued within `waitTime` go out together as
 * one `POST /api/batch` (each item still authorized and scoped on its own by the server).
 */
export function createApi(options: {
  token: () => Promise<string | null>;
  config: ClientConfig;
  onRequest?: RequestListener;
}): ApiClient {
  const { config } = options;
  const call = async (method: string, path: string, body?: unknown, batched = 0) => {
    const token = await options.token();
    const headers: Record<string, string> = { traceparent: newTraceparent() };
    if (token) headers.authorization = `Bearer ${token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    options.onRequest?.({ method, path, batched });
    const res = await fetch(path, {
      method,
      headers,
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return res;
  };
  const direct = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
    const res = await call(method, path, body);
    if (res.status === 204) return undefined as T;
    const payload = (await res.json().catch(() => null)) as unknown;
    if (!res.ok) throw errorOf(res.status, payload);
    return payload as T;
  };

  type Waiting = { path: string; resolve: (v: unknown) => void; reject: (e: unknown) => void };
  let queue: Waiting[] = [];
  let timer: ReturnType<typeof setTimeout> | null = null;
  const flush = async () => {
    timer = null;
    const items = queue;
    queue = [];
    if (items.length === 1) {
      const [only] = items;
      direct(`GET`, only!.path).then(only!.resolve, only!.reject);
      return;
    }
    try {
      const res = await call(
        'POST',
        '/api/batch',
        { requests: items.map((item, i) => ({ id: String(i), method: 'GET', path: item.path })) },
        items.length,
      );
      const payload = (await res.json()) as {
        responses?: Array<{ id: string; status: number; body: unknown }>;
      };
      if (!res.ok || !payload.responses) throw errorOf(res.status, payload);
      for (const answer of payload.responses) {
        const item = items[Number(answer.id)];
        if (!item) continue;
        if (answer.status >= 200 && answer.status < 300) item.resolve(answer.body);
        else item.reject(errorOf(answer.status, answer.body));
      }
    } catch (error) {
      for (const item of items) item.reject(error);
    }
  };
  return {
    get<T>(path: string): Promise<T> {
      if (!config.batch.enabled) return direct<T>('GET', path);
      return new Promise<T>((resolve, reject) => {
        queue.push({ path, resolve: resolve as (v: unknown) => void, reject });
        if (queue.length >= config.batch.maxBatchSize) {
          if (timer) clearTimeout(timer);
          void flush();
        } else {
          timer ??= setTimeout(() => void flush(), config.batch.waitTime);
        }
      });
    },
    send: (method, path, body) => direct(method, path, body),
  };
}

function errorOf(status: number, payload: unknown): ApiError {
  const error = (payload as Partial<ErrorBody> | null)?.error;
  return new ApiError(status, error?.code ?? 'http_error', error?.message ?? `HTTP ${status}`);
}

/** A new sampled W3C trace context for one request. */
export function newTraceparent(): string {
  const hex = (bytes: number) =>
    Array.from(crypto.getRandomValues(new Uint8Array(bytes)), (b) =>
      b.toString(16).padStart(2, '0'),
    ).join('');
  return `00-${hex(16)}-${hex(8)}-01`;
}
