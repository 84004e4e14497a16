import { Hono } from 'hono';
import type { AppEnv } from '../api/context.ts';
import { AppError } from '../api/errors.ts';
import { bodyLimit } from '../api/middleware/limits.ts';
import { traceparentOf } from '../api/trace-context.ts';
import type { Database } from '../db/database.ts';
import { isTransientDbError } from '../db/errors.ts';
import { currentTraceparent, traced, tracedSync } from '../telemetry/spans.ts';
import { type ApplyOutcome, applyDelivery } from './apply.ts';
import { parseClerkEvent } from './clerk-events.ts';
import { SignatureError, type WebhookVerifier } from './verify.ts';

export interface WebhookRouteOptions {
  database: Database;
  verify: WebhookVerifier;
  bodyLimitBytes: number;
  /** Called after a commit that changed data: the publisher invalidates caches and pushes. */
  onCommitted: () => void | Promise<void>;
  /** Hook for telemetry: one call per delivery. */
  /** Each handled delivery: lag is svix timestamp -> receipt, apply is the write batch. */
  onDelivery?: (event: {
    type: string | null;
    outcome: ApplyOutcome;
    lagMs: number;
    applyMs: number;
  }) => void;
  now?: () => number;
}

/**
 * `POST /webhooks/clerk` (public, no session): size limit -> Svix signature on the raw
 * body -> parse -> one atomic apply -> 200 only after commit.
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
export function webhookRoutes(options: WebhookRouteOptions) {
  const now = options.now ?? Date.now;
  return new Hono<AppEnv>().post('/clerk', bodyLimit(options.bodyLimitBytes), async (c) => {
    const body = await c.req.text();
    let verified: ReturnType<WebhookVerifier>;
    try {
      verified = tracedSync('sync', 'webhook.verify', () =>
        options.verify(body, c.req.raw.headers),
      );
    } catch (error) {
      if (error instanceof SignatureError) {
        throw new AppError(
          400,
          'invalid_signature',
          `webhook signature rejected: ${error.message}`,
        );
      }
      throw error;
    }
    const receivedAt = now();
    const parsed = parseClerkEvent(body, verified.sentAt);
    let outcome: ApplyOutcome;
    const applyStarted = performance.now();
    try {
      // dedupe (svix-id claim), apply and change-log append: one write batch
      outcome = await traced(
        'sync',
        'webhook.apply',
        async (span) => {
          const result = await applyDelivery(
            options.database,
            {
              svixId: verified.svixId,
              sentAt: verified.sentAt,
              receivedAt,
              body,
              traceContext: currentTraceparent(traceparentOf(c.req.header('traceparent'))),
            },
            parsed,
          );
          span?.setAttribute('sync.outcome', result);
          return result;
        },
        { 'sync.event.type': parsed.type ?? 'unknown' },
      );
    } catch (error) {
      // Whatever failed, the batch rolled back whole. A 5xx makes Svix redeliver.
      throw new AppError(503, 'unavailable', 'could not apply the event; retry later', {
        cause: error,
        headers: { 'Retry-After': isTransientDbError(error) ? '5' : '30' },
      });
    }
    const applyMs = performance.now() - applyStarted;
    if (outcome === 'applied')
      await traced('sync', 'webhook.publish', async () => options.onCommitted());
    options.onDelivery?.({
      type: parsed.type,
      outcome,
      lagMs: receivedAt - verified.sentAt,
      applyMs,
    });
    return c.json({ status: outcome, svixId: verified.svixId });
  });
}
