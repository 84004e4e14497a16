import { type Context, Hono, type MiddlewareHandler } from 'hono';
import { requestHeader } from '../../request-headers.ts';
import { ApplyError, type WebhookIntake } from '../../sync/intake.ts';
import { SignatureError } from '../../sync/verify.ts';
import { type AppEnv, traceOf } from '../context.ts';
import { AppError } from '../errors.ts';
import { bodyLimit } from '../middleware/limits.ts';

/**
 * `POST /webhooks/clerk` (public, no session): size limit -> the intake (Svix signature
 * on the raw body, parse, one atomic apply) -> 200 only after commit.
 *
 * | answer | when |
 * | --- | --- |
 * | 200 `applied` / `stale` / `duplicate` | handled; a stale update or a replay changed nothing |
 * | 200 `ignored` | an event type we do not handle (recorded) |
 * | 200 `dead_letter` | signed but unusable payload, kept in `dead_letters` for replay |
 * | 400 `invalid_signature` | missing headers, bad or expired signature: nothing written |
 * | 413 `payload_too_large` | body over the limit, before any signature work |
 * | 503 `unavailable` | database busy or down: nothing applied, Svix redelivers |
 */
export interface WebhookRouteOptions {
  intake: WebhookIntake;
  bodyLimitBytes: number;
  /** A runtime's faster way to the raw body (Node: `node-body.ts`); the Web way otherwise. */
  readBody?: BodyReader;
}

/**
 * Reads the raw body within `maxBytes` (a 413 `AppError` beyond it), or declines with
 * `undefined` when this runtime's request is not one it can read.
 */
export type BodyReader = (c: Context, maxBytes: number) => Promise<string> | undefined;

export function webhookRoutes(options: WebhookRouteOptions) {
  const webLimit = bodyLimit(options.bodyLimitBytes);
  // the Web way checks the size first (Content-Length, or counting a chunked body)
  const limit: MiddlewareHandler<AppEnv> = async function webhookBodyLimit(c, next) {
    const direct = options.readBody?.(c, options.bodyLimitBytes);
    if (direct === undefined) return webLimit(c, next);
    c.set('rawBody', await direct);
    await next();
  };
  return new Hono<AppEnv>().post('/clerk', limit, async (c) => {
    try {
      const body = c.get('rawBody') ?? (await c.req.text());
      // Node's parsed headers where there are some: `c.req.raw.headers` would build and
      // validate a `Headers` of every line, about 2% of a delivery's CPU in a storm
      const headers = { get: (name: string) => requestHeader(c, name) ?? null };
      return c.json(await options.intake(body, headers, traceOf(c)));
    } catch (error) {
      if (error instanceof SignatureError) {
        throw new AppError(
          400,
          'invalid_signature',
          `webhook signature rejected: ${error.message}`,
        );
      }
      if (error instanceof ApplyError) {
        // Whatever failed, the batch rolled back whole. A 5xx makes Svix redeliver.
        throw new AppError(503, 'unavailable', 'could not apply the event; retry later', {
          cause: error.cause,
          headers: { 'Retry-After': error.transient ? '5' : '30' },
        });
      }
      throw error;
    }
  });
}
