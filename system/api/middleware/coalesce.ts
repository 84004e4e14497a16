import type { MiddlewareHandler } from 'hono';
import { routePath } from 'hono/route';
import {
  type Coalescer,
  defaultCoalesceKey,
  type ResolvedCoalesceConfig,
} from '../../levers/coalesce.ts';
import { type AppEnv, traceOf } from '../context.ts';

/** What a follower receives: the leader's response, copied once. */
export interface SharedResponse {
  status: number;
  headers: Array<[string, string]>;
  body: ArrayBuffer;
}

/**
 * The HTTP adapter of the coalescing lever: GET and HEAD requests with the same key
 * share the leader's response; each follower gets a copy with its own request id.
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
            headers: [...res.headers],
            body: await res.clone().arrayBuffer(),
          }),
        };
      },
    );
    if (result.role === 'follower' || result.role === 'window') {
      c.res = rebuild(result.shared, c.get('requestId'));
    }
  };
}

function rebuild(shared: SharedResponse, requestId: string): Response {
  const headers = new Headers(shared.headers);
  headers.set('X-Request-Id', requestId);
  headers.set('X-Coalesced', 'follower');
  return new Response(shared.status === 204 ? null : shared.body.slice(0), {
    status: shared.status,
    headers,
  });
}
