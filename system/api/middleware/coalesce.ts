import type { MiddlewareHandler } from 'hono';
import { routePath } from 'hono/route';
import {
  type Coalescer,
  defaultCoalesceKey,
  type ResolvedCoalesceConfig,
} from '../../levers/coalesce.ts';
import { headersWithoutEarly, respondWithEarlyHeaders } from '../../response-headers.ts';
import { type AppEnv, traceOf } from '../context.ts';

/** What a follower receives: the leader's response, copied once, without its early headers. */
export interface SharedResponse {
  status: number;
  headers: Array<[string, string]>;
  /** The API answers JSON (or nothing): text, as the response cache keeps it. */
  body: string | null;
}

/**
 * The HTTP adapter of the coalescing lever: GET and HEAD requests with the same key
 * share the leader's response; each follower gets a copy with its own early headers
 * (request id, CORS answer, security headers).
 * Mounted after the session (the key's scope), before the membership check, so the
 * followers share that too.
 */
export function coalesce(
  config: ResolvedCoalesceConfig,
  coalescer: Coalescer,
): MiddlewareHandler<AppEnv> {
  const keyOf = config.keyGenerator ?? defaultCoalesceKey;
  return async function coalesce(c, next) {
    const method = c.req.method;
    if (method !== 'GET' && method !== 'HEAD') return next();
    const session = c.get('session');
    const result = await coalescer.run<SharedResponse>(
      {
        scope: `${session.userId}|${session.orgId ?? '-'}`,
        key: keyOf(c.req.raw),
        // the handler's route template (bounded cardinality, for telemetry)
        route: routePath(c, -1),
        trace: traceOf(c),
      },
      async () => {
        // Hono turns a thrown error into the error response here, so a failure is a 5xx
        await next();
        const res = c.res;
        return {
          ok: res.status < 500,
          share: async () => ({
            status: res.status,
            headers: headersWithoutEarly(c, res),
            body: res.status === 204 ? null : await res.clone().text(),
          }),
        };
      },
    );
    if (result.role === 'follower' || result.role === 'window') {
      const { status, headers, body } = result.shared;
      c.res = respondWithEarlyHeaders(c, body, status, {
        ...Object.fromEntries(headers),
        'x-coalesced': 'follower',
      });
    }
  };
}
