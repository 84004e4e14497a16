import type { MiddlewareHandler } from 'hono';
import { bodyLimit as honoBodyLimit } from 'hono/body-limit';
import { requestHeader, requestHeaderBytes } from '../../request-headers.ts';
import { AppError } from '../errors.ts';

/**
 * Total request header size (names + values). Node refuses headers over 16 KiB with a
 * bare 431; a lower limit here answers with the JSON error shape on every runtime.
 */
export function headerLimit(maxBytes: number): MiddlewareHandler {
  return async function headerLimit(c, next) {
    if (requestHeaderBytes(c) > maxBytes) {
      throw new AppError(431, 'headers_too_large', `request headers exceed ${maxBytes} bytes`);
    }
    await next();
  };
}

const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/**
 * Body size limit, checked from Content-Length or while streaming a chunked body.
 * Skipped for GET/HEAD/OPTIONS: touching `request.body` makes @hono/node-server build
 * a full Request with a stream and an AbortController, which costs more than the
 * rest of a cached read.
 */
export function bodyLimit(maxBytes: number): MiddlewareHandler {
  const limit = honoBodyLimit({
    maxSize: maxBytes,
    onError: () => {
      throw new AppError(413, 'payload_too_large', `request body exceeds ${maxBytes} bytes`);
    },
  });
  return async function bodyLimit(c, next) {
    if (BODY_METHODS.has(c.req.method)) return limit(c, next);
    await next();
  };
}

/** Requests that carry a body must say it is JSON. */
export function requireJsonBody(): MiddlewareHandler {
  return async function requireJsonBody(c, next) {
    const method = c.req.method;
    if (method === 'POST' || method === 'PUT' || method === 'PATCH') {
      const type = requestHeader(c, 'content-type') ?? '';
      if (!/^application\/(.+\+)?json\s*(;|$)/i.test(type)) {
        throw new AppError(415, 'unsupported_media_type', 'content-type must be application/json');
      }
    }
    await next();
  };
}
