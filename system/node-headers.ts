import type { ServerResponse } from 'node:http';
import type { Context } from 'hono';
import { type EarlyHeaders, honoEarlyHeaders } from './api/middleware/headers.ts';

const outgoingOf = (c: Context) => (c.env as { outgoing?: ServerResponse } | undefined)?.outgoing;

/**
 * The Node `EarlyHeaders`: straight on @hono/node-server's `ServerResponse`
 * (`c.env.outgoing`), where Node keeps them until the head is written; the headers of the
 * handler's response are set over them then, so they still win. A response made here has
 * its headers as a plain record, which node-server writes as it is. Through Hono where
 * there is no `ServerResponse` (tests' `app.request`).
 */
export const nodeEarlyHeaders: EarlyHeaders = {
  set(c, name, value) {
    const outgoing = outgoingOf(c);
    if (outgoing !== undefined && !outgoing.headersSent) outgoing.setHeader(name, value);
    else honoEarlyHeaders.set(c, name, value);
  },
  respond(c, body, status, headers) {
    if (outgoingOf(c) === undefined) return honoEarlyHeaders.respond(c, body, status, headers);
    return new Response(body, { status, headers });
  },
};
