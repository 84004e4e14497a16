import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { isTransientDbError } from '../db/errors.ts';
import { CoalesceTimeoutError } from '../levers/coalesce.ts';
import { isUnavailable } from '../levers/recovery.ts';

/**
 * The one error model. Handlers throw `AppError`; `onError` turns anything thrown
 * into the stable body below. Internals (stack, SQL, token reasons) never reach the
 * body; they go to the log with the request id.
 *
 *   { "error": { "code": "not_found", "message": "organization not found", "requestId": "..." } }
 */
export type ErrorCode =
  | 'invalid_request'
  | 'invalid_signature'
  | 'malformed_json'
  | 'unauthenticated'
  | 'forbidden'
  | 'no_active_org'
  | 'not_found'
  | 'method_not_allowed'
  | 'payload_too_large'
  | 'unsupported_media_type'
  | 'headers_too_large'
  | 'unavailable'
  | 'internal';

export class AppError extends Error {
  override readonly name = 'AppError';
  constructor(
    readonly status: ContentfulStatusCode,
    readonly code: ErrorCode,
    message: string,
    options?: { cause?: unknown; headers?: Record<string, string> },
  ) {
    super(message, options);
    this.headers = options?.headers;
  }
  readonly headers: Record<string, string> | undefined;
}

export interface ErrorBody {
  error: { code: ErrorCode; message: string; requestId: string | undefined };
}

export interface ErrorLogger {
  error(details: Record<string, unknown>, message: string): void;
}

export function errorResponse(c: Context, error: AppError): Response {
  const body: ErrorBody = {
    error: { code: error.code, message: error.message, requestId: c.get('requestId') },
  };
  return c.json(body, error.status, error.headers);
}

/** Maps whatever was thrown to an `AppError`; unknown errors become an opaque 500. */
export function toAppError(error: unknown): AppError {
  if (error instanceof AppError) return error;
  if (error instanceof HTTPException) {
    // Raised by Hono itself: body limit, malformed JSON in a validator.
    if (error.status === 413)
      return new AppError(413, 'payload_too_large', 'request body too large');
    if (error.status === 400 && /json/i.test(error.message)) {
      return new AppError(400, 'malformed_json', 'request body is not valid JSON');
    }
    const status = error.status as ContentfulStatusCode;
    return new AppError(
      status,
      status >= 500 ? 'internal' : 'invalid_request',
      error.message || 'bad request',
    );
  }
  if (error instanceof CoalesceTimeoutError) {
    // the leader of a shared read hung: time out like it, rather than stampede the database
    return new AppError(503, 'unavailable', error.message, {
      cause: error,
      headers: { 'Retry-After': '1' },
    });
  }
  if (isUnavailable(error) || isTransientDbError(error)) {
    // breaker open, deadline passed, or the database busy/unreachable: retry later
    return new AppError(503, 'unavailable', 'the database is unavailable; retry later', {
      cause: error,
      headers: { 'Retry-After': '2' },
    });
  }
  return new AppError(500, 'internal', 'internal error', { cause: error });
}

export function createErrorHandler(logger: ErrorLogger) {
  return function onError(error: unknown, c: Context): Response {
    const appError = toAppError(error);
    if (appError.status >= 500) {
      logger.error(
        { requestId: c.get('requestId'), err: appError.cause ?? appError },
        'request failed',
      );
    }
    return errorResponse(c, appError);
  };
}

export const notFound = (c: Context): Response =>
  errorResponse(c, new AppError(404, 'not_found', 'route not found'));
