const TRACEPARENT = /^[\da-f]{2}-[\da-f]{32}-[\da-f]{16}-[\da-f]{2}$/;

/** A well-formed W3C `traceparent`, or null (a malformed one is dropped, not stored). */
export function traceparentOf(header: string | undefined): string | null {
  if (header === undefined) return null;
  const value = header.trim().toLowerCase();
  return TRACEPARENT.test(value) && !/^[\da-f]{2}-0{32}-/.test(value) ? value : null;
}
