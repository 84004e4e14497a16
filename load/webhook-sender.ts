import { Webhook } from 'svix';
import { Pool } from 'undici';
import type { PlannedDelivery } from '../fixtures/clerk/storm.ts';
import { assertLoopback } from './loopback.ts';

/**
 * Signs Clerk events exactly as Svix does (`svix-id`, `svix-timestamp`, `svix-signature`
 * = `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, with the `svix` library) and
 * sends them to `<url>/webhooks/clerk`, at a bounded concurrency and optional rate.
 */
const signers = new Map<string, Webhook>();

export function signedHeaders(
  secret: string,
  svixId: string,
  body: string,
  at = new Date(),
): Record<string, string> {
  // one signer per secret: constructing one decodes the secret every time
  let signer = signers.get(secret);
  if (signer === undefined) {
    signer = new Webhook(secret);
    signers.set(secret, signer);
  }
  const signature = signer.sign(svixId, at, body);
  return {
    'content-type': 'application/json',
    'svix-id': svixId,
    'svix-timestamp': String(Math.floor(at.getTime() / 1000)),
    'svix-signature': signature,
  };
}

export interface SendOptions {
  /** Base URL of the app, e.g. http://127.0.0.1:8787 */
  url: string;
  secret: string;
  /** @default 16 */
  concurrency?: number;
  /** Open-model arrival rate (deliveries/s); unset = as fast as `concurrency` allows. */
  ratePerSec?: number;
  allowRemote?: boolean;
  /** Per-request timeout. @default 15000 (Svix's) */
  timeoutMs?: number;
  onResult?: (result: DeliveryResult) => void;
}

export interface DeliveryResult {
  delivery: PlannedDelivery;
  status: number;
  /** `status` field of a 2xx body: applied, stale, duplicate, ignored, dead_letter. */
  outcome: string | null;
  latencyMs: number;
  /** When the request was scheduled (open model), for coordinated-omission-free latency. */
  scheduledAt: number;
}

export interface SendSummary {
  sent: number;
  byStatus: Record<string, number>;
  byOutcome: Record<string, number>;
  /** Deliveries whose answer did not match their kind (a valid one refused, a forged one accepted…). */
  unexpected: DeliveryResult[];
  elapsedMs: number;
  perSecond: number;
  results: DeliveryResult[];
}

export async function sendDeliveries(
  deliveries: PlannedDelivery[],
  options: SendOptions,
): Promise<SendSummary> {
  assertLoopback(options.url, options.allowRemote ?? false);
  const endpoint = new URL('/webhooks/clerk', options.url);
  const concurrency = options.concurrency ?? 16;
  const wrongSecret = `whsec_${btoa('not-the-secret-not-the-secret-!!')}`;
  const results: DeliveryResult[] = [];
  // signed before the clock starts, as Svix signs before it sends: the measured window
  // is delivery, not the generator's HMAC work (timestamps stay well inside ±5 min)
  const signed = deliveries.map((delivery) =>
    signedHeaders(
      delivery.kind === 'bad_signature' ? wrongSecret : options.secret,
      delivery.svixId,
      delivery.body,
    ),
  );
  // undici's pool: keep-alive connections and one write per request. The generator shares
  // the machine with the app, so its CPU is taken from the app's: per delivery against a
  // bare server, fetch cost as much as the server, node:http 102-176 µs, undici 65-102 µs.
  const pool = new Pool(endpoint.origin, { connections: concurrency });
  const path = endpoint.pathname;
  const timeoutMs = options.timeoutMs ?? 15_000;
  const post = async (headers: Record<string, string>, body: string) => {
    const res = await pool.request({
      path,
      method: 'POST',
      headers,
      body,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    });
    return { status: res.statusCode, body: await res.body.text() };
  };
  const started = performance.now();
  let next = 0;

  async function deliverOne(
    delivery: PlannedDelivery,
    headers: Record<string, string>,
    scheduledAt: number,
  ): Promise<void> {
    let status = 0;
    let outcome: string | null = null;
    try {
      const res = await post(headers, delivery.body);
      status = res.status;
      let json: { status?: unknown } | null = null;
      try {
        json = JSON.parse(res.body) as { status?: unknown };
      } catch {
        json = null;
      }
      outcome = typeof json?.status === 'string' ? json.status : null;
    } catch {
      status = 0; // network error or timeout
    }
    const result = {
      delivery,
      status,
      outcome,
      latencyMs: performance.now() - scheduledAt,
      scheduledAt,
    };
    results.push(result);
    options.onResult?.(result);
  }

  async function worker(): Promise<void> {
    for (;;) {
      const i = next++;
      const delivery = deliveries[i];
      if (delivery === undefined) return;
      let scheduledAt = performance.now();
      if (options.ratePerSec) {
        scheduledAt = started + (i * 1000) / options.ratePerSec;
        const wait = scheduledAt - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      }
      await deliverOne(delivery, signed[i]!, scheduledAt);
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, deliveries.length) }, worker));
  const elapsedMs = performance.now() - started;
  await pool.close();

  const count = (key: (r: DeliveryResult) => string) =>
    results.reduce<Record<string, number>>((acc, r) => {
      acc[key(r)] = (acc[key(r)] ?? 0) + 1;
      return acc;
    }, {});
  return {
    sent: results.length,
    byStatus: count((r) => String(r.status)),
    byOutcome: count((r) => r.outcome ?? `http_${r.status}`),
    unexpected: results.filter((r) => !answerMatches(r)),
    elapsedMs,
    perSecond: (results.length * 1000) / elapsedMs,
    results,
  };
}

/** What each kind of delivery must get back. */
function answerMatches(r: DeliveryResult): boolean {
  switch (r.delivery.kind) {
    case 'valid':
      return r.status === 200 && ['applied', 'stale', 'duplicate'].includes(r.outcome ?? '');
    case 'bad_signature':
      return r.status === 400;
    case 'malformed':
      return r.status === 200 && (r.outcome === 'dead_letter' || r.outcome === 'duplicate');
  }
}
