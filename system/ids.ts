const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** Base62 text of the given bytes, one character per byte (bias is irrelevant for ids). */
export function base62(bytes: Uint8Array): string {
  let out = '';
  for (const byte of bytes) out += BASE62[byte % 62];
  return out;
}

/** A random id shaped like Clerk's (`proj_2b9X…`, 27 characters after the prefix). */
export function newId(prefix: string): string {
  return `${prefix}_${base62(crypto.getRandomValues(new Uint8Array(27)))}`;
}
