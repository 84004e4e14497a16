/**
 * Transient database failures: worth a retry (or a 5xx that makes the caller retry).
 * SQLite reports lock contention as SQLITE_BUSY / SQLITE_LOCKED; remote clients
 * (sqld, Turso) fail with network errors or HTTP 5xx-shaped server errors.
 */
export function isTransientDbError(error: unknown): boolean {
  const e = error as {
    code?: unknown;
    rawCode?: unknown;
    message?: unknown;
    cause?: unknown;
  } | null;
  if (e === null || typeof e !== 'object') return false;
  const code = typeof e.code === 'string' ? e.code : '';
  if (/^SQLITE_(BUSY|LOCKED)/.test(code)) return true;
  if (
    [
      'ECONNREFUSED',
      'ECONNRESET',
      'ETIMEDOUT',
      'EPIPE',
      'UND_ERR_SOCKET',
      'SERVER_ERROR',
      'HRANA_WEBSOCKET_ERROR',
    ].includes(code)
  ) {
    return true;
  }
  const message = typeof e.message === 'string' ? e.message : '';
  if (/database is locked|fetch failed|socket hang up|ECONNREFUSED|ECONNRESET/i.test(message))
    return true;
  return e.cause !== undefined && e.cause !== error ? isTransientDbError(e.cause) : false;
}
