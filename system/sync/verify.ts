import { Webhook } from 'svix';

/**
 * Svix signature verification on the raw body with the `svix` library. Several
 * secrets are accepted so a secret can be rotated without dropping deliveries; the
 * library itself accepts any one of several `v1,` signatures in the header.
 */
export interface VerifiedHeaders {
  svixId: string;
  /** svix-timestamp in epoch ms. */
  sentAt: number;
  /**
   * The body as the library parsed it once the signature matched (it always parses),
   * so the intake need not parse it again; absent when the body is not JSON.
   */
  json?: { value: unknown };
}

export class SignatureError extends Error {
  override readonly name = 'SignatureError';
}

/** What the intake reads of a delivery's headers: a `Headers`, or a runtime's cheaper view. */
export type HeaderReader = Pick<Headers, 'get'>;

export type WebhookVerifier = (body: string, headers: HeaderReader) => VerifiedHeaders;

export function createWebhookVerifier(secrets: readonly string[]): WebhookVerifier {
  if (secrets.length === 0) throw new TypeError('at least one webhook signing secret is required');
  const verifiers = secrets.map((secret) => new Webhook(secret));
  return (body, headers) => {
    const svixHeaders = {
      'svix-id': headers.get('svix-id') ?? '',
      'svix-timestamp': headers.get('svix-timestamp') ?? '',
      'svix-signature': headers.get('svix-signature') ?? '',
    };
    if (
      !svixHeaders['svix-id'] ||
      !svixHeaders['svix-timestamp'] ||
      !svixHeaders['svix-signature']
    ) {
      throw new SignatureError('missing svix-id, svix-timestamp or svix-signature');
    }
    const verified = {
      svixId: svixHeaders['svix-id'],
      sentAt: Number(svixHeaders['svix-timestamp']) * 1000,
    };
    let lastError: unknown;
    for (const verifier of verifiers) {
      try {
        const value = verifier.verify(body, svixHeaders);
        // an empty body verifies as undefined: not JSON
        return body === '' ? verified : { ...verified, json: { value } };
      } catch (error) {
        // svix parses the body only after a signature matched: a SyntaxError means a
        // genuine but malformed payload, which becomes a dead letter, not a 400.
        if (error instanceof SyntaxError) return verified;
        lastError = error;
      }
    }
    // "No matching signature found", "Message timestamp too old", "Invalid Signature Headers"…
    throw new SignatureError(lastError instanceof Error ? lastError.message : 'invalid signature');
  };
}
