import type { Database } from '../db/database.ts';
import { isTransientDbError } from '../db/errors.ts';
import type { ChangeRow } from '../db/schema.ts';
import {
  type RequestTrace,
  traced,
  tracedSync,
  traceparentFor,
  traceparentOf,
  UNTRACED,
} from '../trace.ts';
import { type Applied, type ApplyOutcome, applyDelivery } from './apply.ts';
import { eventTypeLabel, type HandledEventType, parseClerkEvent } from './clerk-events.ts';
import type { HeaderReader, WebhookVerifier } from './verify.ts';

/**
 * One Clerk webhook delivery, framework-free: Svix signature on the raw body -> parse ->
 * one atomic apply (dedupe by svix-id, ordered apply, change-log append) -> the commit
 * hook. The HTTP adapter is `api/routes/webhooks.ts`; it answers only after this
 * resolves, so a 2xx means the event is durably applied.
 *
 * Throws `SignatureError` (nothing written: 400) or `ApplyError` (the batch rolled back
 * whole: 5xx so Svix redelivers).
 */
export interface WebhookDelivery {
  type: HandledEventType | 'other';
  outcome: ApplyOutcome;
  /** svix timestamp -> receipt. */
  lagMs: number;
  /** The write batch. */
  applyMs: number;
}

export interface WebhookIntakeOptions {
  database: Database;
  verify: WebhookVerifier;
  /**
   * Called after a commit that changed data, with the change-log rows it appended: the
   * publisher invalidates caches and pushes; the 2xx waits for it.
   */
  onCommitted: (changes: readonly ChangeRow[]) => void | Promise<void>;
  /** One call per handled delivery (telemetry, logs). */
  onDelivery?: (delivery: WebhookDelivery) => void;
  now?: () => number;
}

export class ApplyError extends Error {
  override readonly name = 'ApplyError';
  /** A busy or unreachable database: Svix should retry soon. */
  readonly transient: boolean;
  constructor(cause: unknown) {
    super('could not apply the event', { cause });
    this.transient = isTransientDbError(cause);
  }
}

/** `trace`: the delivery request's span and timings (its stages nest under them). */
export type WebhookIntake = (
  body: string,
  headers: HeaderReader,
  trace?: RequestTrace,
) => Promise<{ status: ApplyOutcome; svixId: string }>;

export function createWebhookIntake(options: WebhookIntakeOptions): WebhookIntake {
  const now = options.now ?? Date.now;
  return async function receive(body, headers, trace = UNTRACED) {
    // throws SignatureError before anything is parsed or written
    const verified = tracedSync(trace, 'sync', 'webhook.verify', () =>
      options.verify(body, headers),
    );
    const receivedAt = now();
    const parsed = parseClerkEvent(body, verified.sentAt, verified.json);
    const applyStarted = performance.now();
    let applied: Applied;
    try {
      applied = await traced(
        trace,
        'sync',
        'webhook.apply',
        async (span) => {
          const result = await applyDelivery(
            options.database.clientUnder(span),
            {
              svixId: verified.svixId,
              sentAt: verified.sentAt,
              receivedAt,
              body,
              traceContext: traceparentFor(
                span,
                traceparentOf(headers.get('traceparent') ?? undefined),
              ),
            },
            parsed,
          );
          span?.setAttribute('sync.outcome', result.outcome);
          return result;
        },
        { 'sync.event.type': parsed.type ?? 'unknown' },
      );
    } catch (error) {
      throw new ApplyError(error);
    }
    const applyMs = performance.now() - applyStarted;
    const { outcome } = applied;
    if (outcome === 'applied') {
      await traced(trace, 'sync', 'webhook.publish', async () =>
        options.onCommitted(applied.changes),
      );
    }
    options.onDelivery?.({
      type: eventTypeLabel(parsed.type),
      outcome,
      lagMs: receivedAt - verified.sentAt,
      applyMs,
    });
    return { status: outcome, svixId: verified.svixId };
  };
}
