import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';

/**
 * Response headers set before the handler runs (the request id, the security and CORS
 * headers), without building a `Headers` object where the runtime can take them as they
 * are. Through Hono, the first `c.header()` of a request makes an undici `Headers`, each
 * set is validated there and again by Node, and @hono/node-server must turn it back into
 * a plain object (about 12% of a `GET /health`, docs/measurements.md). On Node they go
 * straight on the `ServerResponse` node-server passes as `c.env.outgoing`, where Node
 * keeps them until the head is written; the headers of the handler's response are set
 * over them then, so they still win. Everywhere else (Workers, `app.request` in tests)
 * through Hono. The request side is `request-headers.ts`.
 */
interface NodeOutgoing {
  headersSent: boolean;
  setHeader(name: string, value: string): unknown;
}

function outgoingOf(c: Context): NodeOutgoing | undefined {
  const outgoing = (c.env as { outgoing?: NodeOutgoing } | undefined)?.outgoing;
  // a Worker binding could be called `outgoing` too
  return typeof outgoing?.setHeader === 'function' ? outgoing : undefined;
}

/** One header on this request's answer, whatever response the handler builds (errors too). */
export function setEarlyHeader(c: Context, name: string, value: string): void {
  const outgoing = outgoingOf(c);
  if (outgoing !== undefined && !outgoing.headersSent) outgoing.setHeader(name, value);
  else c.header(name, value);
}

/**
 * A response a middleware answers with instead of running the handler (a cache hit),
 * carrying the early headers. Through Hono they are only in the context until a response
 * is made from it (`c.body`): a `new Response` would drop them. On Node they are on the
 * `ServerResponse` already, and a response with a plain record of headers is written by
 * node-server as it is.
 */
export function respondWithEarlyHeaders(
  c: Context,
  body: string,
  status: number,
  headers: Record<string, string>,
): Response {
  if (outgoingOf(c) === undefined) return c.body(body, status as ContentfulStatusCode, headers);
  return new Response(body, { status, headers });
}
