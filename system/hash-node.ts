import { createHash } from 'node:crypto';
import type { Sha256Hex } from './hash.ts';

/** The Node implementation of `Sha256Hex`: synchronous, no promise, no copy. */
export const nodeSha256: Sha256Hex = (data) => createHash('sha256').update(data).digest('hex');
