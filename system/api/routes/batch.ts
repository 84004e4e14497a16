import { Hono } from 'hono';
import { z } from 'zod';
import type { AppEnv } from '../context.ts';
import { AppError } from '../errors.ts';
import { json } from '../respond.ts';
import { validate } from '../validation.ts';

/**
 * `POST /api/batch`: the client-side half of batching. Several GETs in one round trip,
 * each executed through the same app exactly as a direct call (its own auth, org
 * scoping, levers), so an item can never read more than the caller could directly.
 * Identical items run once. One failing item fails alone.
 *
 *   { "requests": [{ "id": "a", "method": "GET", "path": "/api/orgs/org_…/members?limit=20" }, …] }
 *   -> { "responses": [{ "id": "a", "status": 200, "body": … }, …] }
 */
export const MAX_BATCH_ITEMS = 20;

const item = z.object({
  id: z.string().min(1).max(64),
  method: z.literal('GET', { message: 'only GET items are allowed' }),
  path: z.string().startsWith('/api/', { message: 'path must start with /api/' }).max(2048),
});
const batchBody = z.object({ requests: z.array(item).min(1, { message: 'at least one item' }) });

export function batchRoutes(dispatch: (request: Request) => Promise<Response>) {
  return new Hono<AppEnv>().post('/', validate('json', batchBody), async (c) => {
    const { requests } = c.req.valid('json');
    if (requests.length > MAX_BATCH_ITEMS) {
      throw new AppError(
        413,
        'payload_too_large',
        `at most ${MAX_BATCH_ITEMS} items per batch; got ${requests.length}`,
      );
    }
    const ids = new Set<string>();
    for (const r of requests) {
      if (ids.has(r.id))
        throw new AppError(400, 'invalid_request', `duplicate item id ${JSON.stringify(r.id)}`);
      ids.add(r.id);
    }
    const base = new URL(c.req.url);
    const targets = requests.map((r) => {
      const url = new URL(r.path, base.origin);
      // checked after normalization: '/api/../health' or '/api/batch' are refused
      if (!url.pathname.startsWith('/api/') || url.pathname === '/api/batch') {
        throw new AppError(
          400,
          'invalid_request',
          `item ${JSON.stringify(r.id)}: path not allowed (nested batch or outside /api/)`,
        );
      }
      return url.toString();
    });
    const headers = new Headers();
    for (const name of ['authorization', 'traceparent']) {
      const value = c.req.header(name);
      if (value) headers.set(name, value);
    }
    const distinct = new Map<string, Promise<{ status: number; body: unknown }>>();
    for (const url of targets) {
      if (!distinct.has(url)) {
        distinct.set(
          url,
          dispatch(new Request(url, { headers })).then(async (res) => ({
            status: res.status,
            body: res.status === 204 ? null : await res.json().catch(() => null),
          })),
        );
      }
    }
    const responses = await Promise.all(
      requests.map(async (r, i) => ({ id: r.id, ...(await distinct.get(targets[i]!)!) })),
    );
    return json(c, { responses });
  });
}
