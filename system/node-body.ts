import type { IncomingMessage } from 'node:http';
import type { Context } from 'hono';
import { AppError } from './api/errors.ts';
import type { BodyReader } from './api/routes/webhooks.ts';

/**
 * The Node body reader for `POST /webhooks/clerk`: the raw body straight from Node's
 * `IncomingMessage`, with the size limit enforced from Content-Length and again while
 * reading (a chunked body). Through `c.req.text()`, @hono/node-server first builds a
 * full undici `Request` with a web stream over the socket, the largest single cost of a
 * webhook delivery in the profile. Off node-server (tests' `app.request`, Workers) it
 * declines, and the route reads the Web way.
 */
export const readNodeBody: BodyReader = (c: Context, maxBytes: number) => {
  const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
  if (incoming === undefined || incoming.readableEnded) return undefined;
  const tooLarge = () =>
    new AppError(413, 'payload_too_large', `request body exceeds ${maxBytes} bytes`);
  const declared = Number(incoming.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes) return Promise.reject(tooLarge());
  return new Promise<string>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        incoming.off('data', onData);
        incoming.resume(); // drain the rest; the answer is already decided
        reject(tooLarge());
        return;
      }
      chunks.push(chunk);
    };
    incoming.on('data', onData);
    incoming.once('end', () => resolve(Buffer.concat(chunks, size).toString('utf8')));
    incoming.once('error', reject);
  });
};
