import { createHash, hash } from 'node:crypto';
import type { Sha256Hex } from './hash.ts';

/**
 * The Node implementation of `Sha256Hex`: synchronous, no promise, no copy. `crypto.hash`
 * (Node 20.12+) is the one-shot form, about half the time of `createHash` for a session
 * token, since it makes no `Hash` object; `createHash` where it is missing.
 */
export const nodeSha256: Sha256Hex =
  typeof hash === 'function'
    ? (data) => hash('sha256', data, 'hex')
    : (data) => createHash('sha256').update(data).digest('hex');
