import { describe, expect, it } from 'vitest';
import { webCryptoSha256 } from './hash.ts';
import { nodeSha256 } from './hash-node.ts';

describe('Sha256Hex', () => {
  it('node:crypto and Web Crypto give the same digest, for text and bytes', async () => {
    // the SHA-256 test vector of "abc"
    const abc = 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad';
    expect(nodeSha256('abc')).toBe(abc);
    expect(await webCryptoSha256('abc')).toBe(abc);
    const bytes = new TextEncoder().encode('a longer body é ✓');
    expect(nodeSha256(bytes)).toBe(await webCryptoSha256(bytes));
  });
});
