import type { Context, MiddlewareHandler } from 'hono';
import { routePath } from 'hono/route';
import type { Sha256Hex } from '../../hash.ts';
import {
  type CacheScope,
  edgeCacheControl,
  type OrgCollection,
  type ResolvedCacheConfig,
  type ResponseCache,
  strongEtag,
} from '../../levers/cache.ts';
import type { CachedResponse } from '../../levers/cache-store.ts';
import { requestHeader } from '../../request-headers.ts';
import { respondWithEarlyHeaders } from '../../response-headers.ts';
import { type AppEnv, traceOf } from '../context.ts';

/**
 * The HTTP adapter of the caching lever. A route opts in where it is defined, by
 * declaring who may share its answer and which org collections it reads:
 *
 *   .get('/members', cached('org', ['members']), handler)   // same answer for every member
 *   .get('/', cached('user', ['members']), handler)         // has the caller's role in it
 *
 * A route without a declaration is never cached. Declared routes must sit behind
 * `requireOrgMember` (the key starts with the verified org, and a hit still passes the
 * membership check first). `test/api/cache-scope.test.ts` checks every `org`
 * declaration by asking each route as two different members.
 */
export type RouteCache = (scope: CacheScope, reads?: readonly OrgCollection[]) => CacheDeclaration;

/** The middleware a declaration returns, marked so the declarations can be listed. */
export type CacheDeclaration = MiddlewareHandler<AppEnv> & {
  readonly cacheScope: CacheScope;
  readonly cacheReads: readonly OrgCollection[];
};

/** Declarations backed by `responses`, or inert ones when the server-side cache is off. */
export function routeCache(responses: ResponseCache | undefined): RouteCache {
  return (scope, reads = []) => {
    const middleware: MiddlewareHandler<AppEnv> = responses
      ? async function cachedRoute(c, next) {
          if (c.req.method !== 'GET') return next();
          const result = await responses.read(
            {
              orgId: c.get('member').orgId,
              userId: c.get('session').userId,
              scope,
              url: c.req.url,
              route: routePath(c, -1),
              reads,
              trace: traceOf(c),
            },
            async (tags) => {
              c.set('cacheTags', tags);
              await next();
              return c.res;
            },
          );
          if (result.kind === 'entry') {
            c.res = respond(c, result.entry, result.state);
          } else if (result.stored) c.res.headers.set('X-Cache', 'miss');
        }
      : async function uncachedRoute(_c, next) {
          await next();
        };
    return Object.assign(middleware, { cacheScope: scope, cacheReads: reads });
  };
}

/**
 * A cached entry as this request's answer, with the early headers (its own request id
 * among them: `requestIds()` sets it early, like the CORS and security headers).
 */
function respond(
  c: Context<AppEnv>,
  entry: CachedResponse,
  state: 'hit' | 'miss' | 'stale',
): Response {
  const headers: Record<string, string> = Object.fromEntries(entry.headers);
  headers['x-cache'] = state;
  if (state === 'stale') headers.warning = '110 - "Response is Stale"';
  return respondWithEarlyHeaders(c, entry.body, entry.status, headers);
}

/** The per-request tag set the tagging loaders write into (undefined outside a cached read). */
export const cacheTagsOf = (c: Context<AppEnv>) => () => c.get('cacheTags');

/**
 * The `edge` level, on every runtime: a strong ETag over the body of each 200 GET,
 * `304 Not Modified` for a matching `If-None-Match`, and Cache-Control.
 */
export function httpValidators(
  config: ResolvedCacheConfig,
  sha256: Sha256Hex,
): MiddlewareHandler<AppEnv> {
  const cacheControl = edgeCacheControl(config);
  return async function httpValidators(c, next) {
    await next();
    if (c.req.method !== 'GET' || c.res.status !== 200) return;
    const etag = await strongEtag(await c.res.clone().arrayBuffer(), sha256);
    const matches = (requestHeader(c, 'if-none-match') ?? '')
      .split(',')
      .map((tag) => tag.trim().replace(/^W\//, ''))
      .includes(etag);
    if (matches) {
      const headers = new Headers(c.res.headers);
      headers.delete('content-type');
      headers.delete('content-length');
      c.res = new Response(null, { status: 304, headers });
    }
    c.res.headers.set('ETag', etag);
    c.res.headers.set('Cache-Control', cacheControl);
  };
}
