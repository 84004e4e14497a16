/**
 * SHA-256 as lowercase hex, behind one small interface so `system/` stays
 * runtime-neutral: Web Crypto here (workerd, browsers), the synchronous `node:crypto`
 * implementation on Node (`hash-node.ts`, passed in by `node.ts`). On Node,
 * `crypto.subtle.digest` is asynchronous and costs several microseconds of promise
 * machinery for a small input; `createHash` does the same work inline.
 */
export type Sha256Hex = (data: string | Uint8Array<ArrayBuffer>) => string | Promise<string>;

const encoder = new TextEncoder();

export const webCryptoSha256: Sha256Hex = async (data) => {
  const bytes = typeof data === 'string' ? encoder.encode(data) : data;
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
  let hex = '';
  for (const byte of digest) hex += byte.toString(16).padStart(2, '0');
  return hex;
};
