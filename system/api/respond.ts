import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { tracedSync } from '../trace.ts';
import { traceOf } from './context.ts';

/** `c.json` as the `serialize` stage of the request (its own span and Server-Timing entry). */
export function json(c: Context, body: unknown, status: ContentfulStatusCode = 200): Response {
  return tracedSync(traceOf(c), 'serialize', 'serialize', () => c.json(body as object, status));
}
