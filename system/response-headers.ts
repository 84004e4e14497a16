import type { Context } from 'hono';
import type { ContentfulStatusCode, StatusCode } from 'hono/utils/http-status';

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

/**
 * Through Hono the early headers end up in the handler's response with its own: which
 * names were early, per request, so a copy of that response can leave them out.
 */
const earlyThroughHono = new WeakMap<Context, Set<string>>();

/** One header on this request's answer, whatever response the handler builds (errors too). */
export function setEarlyHeader(c: Context, name: string, value: string): void {
  const outgoing = outgoingOf(c);
  if (outgoing !== undefined && !outgoing.headersSent) {
    outgoing.setHeader(name, value);
    return;
  }
  c.header(name, value);
  const names = earlyThroughHono.get(c);
  if (names === undefined) earlyThroughHono.set(c, new Set([name.toLowerCase()]));
  else names.add(name.toLowerCase());
}

/**
 * The headers of `response` (this request's) that are not early ones: what another
 * request may be given along with the body (a coalesced follower), since the request
 * id and the CORS answer belong to the request that set them.
 */
export function headersWithoutEarly(c: Context, response: Response): Array<[string, string]> {
  const early = earlyThroughHono.get(c);
  const headers = [...response.headers];
  return early === undefined ? headers : headers.filter(([name]) => !early.has(name));
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
  body: string | null,
  status: number,
  headers: Record<string, string>,
): Response {
  if (outgoingOf(c) !== undefined) return new Response(body, { status, headers });
  // a 204 or 304 has no body (hono types that apart)
  return body === null
    ? c.body(null, status as StatusCode, headers)
    : c.body(body, status as ContentfulStatusCode, headers);
}
