import type { MiddlewareHandler } from 'hono';
import { cors } from 'hono/cors';
import { requestHeader } from '../../request-headers.ts';
import { setEarlyHeader } from '../../response-headers.ts';
import type { AppEnv } from '../context.ts';

/*
 * Why not hono's `cors()` and `secureHeaders()` as they are: both touch `c.res` (before
 * and after `next()` respectively). On @hono/node-server that turns the lightweight
 * response into a full undici Response whose body is streamed back through a
 * ReadableStream: measured here at 3-4x fewer requests/s on a cached read. The
 * headers below do not depend on the response, so they are set up front (`setEarlyHeader`)
 * and ride on whatever response the handler builds (errors included).
 */

/** CORS for an allowlist: simple requests get their headers up front; preflights go to hono's `cors()`. */
export function corsAllowlist(origins: readonly string[]): MiddlewareHandler {
  const allowed = new Set(origins);
  const preflight = cors({
    origin: [...origins],
    allowMethods: ['GET', 'POST', 'PATCH', 'DELETE', 'OPTIONS'],
    allowHeaders: ['Authorization', 'Content-Type', 'X-Request-Id', 'traceparent'],
    exposeHeaders: ['X-Request-Id'],
    maxAge: 600,
  });
  return function corsAllowlist(c, next) {
    if (c.req.method === 'OPTIONS') return preflight(c, next);
    const origin = requestHeader(c, 'origin');
    if (origin !== undefined && allowed.has(origin)) {
      setEarlyHeader(c, 'Access-Control-Allow-Origin', origin);
      setEarlyHeader(c, 'Access-Control-Expose-Headers', 'X-Request-Id');
    }
    setEarlyHeader(c, 'Vary', 'Origin');
    return next();
  };
}

/*
 * Security headers. Every answer carries the set OWASP's REST Security Cheat Sheet asks of
 * an API response, plus `Cross-Origin-Resource-Policy` (a page of another origin may not
 * load our JSON as a no-cors subresource); `Content-Type` comes with each body. The rest of
 * helmet's set (hono's `secureHeaders()` defaults) governs how a browser treats a document:
 * referrers, DNS prefetch, opener, agent cluster, legacy IE and Flash switches. Those go on
 * the pages of the client only (`documentSecurityHeaders`). On a JSON answer they did
 * nothing but cost: with them `GET /health` spent about 12% more server CPU (an A/B of the
 * production bundle, docs/measurements.md).
 */
const API_SECURITY_HEADERS: ReadonlyArray<readonly [string, string]> = [
  ['Content-Security-Policy', "frame-ancestors 'none'"],
  ['Cross-Origin-Resource-Policy', 'same-origin'],
  ['Strict-Transport-Security', 'max-age=15552000; includeSubDomains'],
  ['X-Content-Type-Options', 'nosniff'],
  ['X-Frame-Options', 'DENY'],
];

/** What a document adds to the API's set: the rest of helmet's defaults. */
const DOCUMENT_SECURITY_HEADERS: ReadonlyArray<readonly [string, string]> = [
  ['Cross-Origin-Opener-Policy', 'same-origin'],
  ['Origin-Agent-Cluster', '?1'],
  ['Referrer-Policy', 'no-referrer'],
  ['X-DNS-Prefetch-Control', 'off'],
  ['X-Download-Options', 'noopen'],
  ['X-Permitted-Cross-Domain-Policies', 'none'],
  ['X-XSS-Protection', '0'],
];

const setAll = (headers: ReadonlyArray<readonly [string, string]>): MiddlewareHandler =>
  function securityHeaders(c, next) {
    for (const [name, value] of headers) setEarlyHeader(c, name, value);
    return next();
  };

/** On every answer: the API's security headers. */
export function securityHeaders(): MiddlewareHandler {
  return setAll(API_SECURITY_HEADERS);
}

/** On the client's pages, after `securityHeaders`: the headers only a document needs. */
export function documentSecurityHeaders(): MiddlewareHandler {
  return setAll(DOCUMENT_SECURITY_HEADERS);
}

const REQUEST_ID = /^[\w\-=]{1,255}$/;

/**
 * The `requestId` variable and `X-Request-Id` response header: the caller's id when it is
 * a plain token of at most 255 characters, else a new UUID (hono's `requestId()` rules).
 */
export function requestIds(): MiddlewareHandler<AppEnv> {
  return function requestIds(c, next) {
    const given = requestHeader(c, 'x-request-id');
    const id = given !== undefined && REQUEST_ID.test(given) ? given : crypto.randomUUID();
    c.set('requestId', id);
    setEarlyHeader(c, 'X-Request-Id', id);
    return next();
  };
}
