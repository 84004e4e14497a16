import type { Context } from 'hono';

/**
 * Reading a request's headers without building a `Headers` object where the runtime has
 * already parsed them. On @hono/node-server `c.req.header()` (any read of
 * `c.req.raw.headers`) makes an undici `Headers` from Node's raw header list, validating
 * every entry: about 5 µs a request here, a tenth of a `GET /health` (docs/measurements.md).
 * Node has them as a plain object already, on the `incoming` message node-server passes
 * as `c.env`. Everywhere else (Workers, `app.request` in tests) these read the Request's
 * own headers.
 *
 * One difference on Node: for the headers Node treats as single (`authorization`,
 * `content-type`, `host`, ...) a repeated line is dropped and the first one wins, where
 * `Headers` joins them with ", "; other repeated headers are joined on both.
 */
interface NodeIncoming {
  headers: Record<string, string | string[] | undefined>;
  rawHeaders: string[];
}

function incomingOf(c: Context): NodeIncoming | undefined {
  const incoming = (c.env as { incoming?: NodeIncoming } | undefined)?.incoming;
  // a Worker binding could be called `incoming` too
  return Array.isArray(incoming?.rawHeaders) ? incoming : undefined;
}

/** One request header by its lower-case name. */
export function requestHeader(c: Context, name: string): string | undefined {
  const incoming = incomingOf(c);
  if (incoming === undefined) return c.req.header(name);
  const value = incoming.headers[name];
  return typeof value === 'string' || value === undefined ? value : value.join(', ');
}

/** The request's header lines in bytes: every name and value plus `": "` and CRLF. */
export function requestHeaderBytes(c: Context): number {
  let size = 0;
  const incoming = incomingOf(c);
  if (incoming === undefined) {
    c.req.raw.headers.forEach((value, name) => {
      size += name.length + value.length + 4;
    });
    return size;
  }
  const raw = incoming.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) size += raw[i]!.length + raw[i + 1]!.length + 4;
  return size;
}
