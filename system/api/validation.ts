import { zValidator } from '@hono/zod-validator';
import type { ValidationTargets } from 'hono';
import { z } from 'zod';
import { AppError } from './errors.ts';

/**
 * zod validation for params, query and bodies. A failure becomes one 400 that names
 * every offending field, e.g. `query.limit: Too small: expected number to be >=1`.
 * Unknown body keys are stripped, so `orgId` or `role` in a body cannot grant anything.
 */
export function validate<Target extends keyof ValidationTargets, Schema extends z.ZodType>(
  target: Target,
  schema: Schema,
) {
  return zValidator(target, schema, (result) => {
    if (!result.success) {
      const detail = result.error.issues
        .map((issue) => `${[target, ...issue.path].join('.')}: ${issue.message}`)
        .join('; ');
      throw new AppError(400, 'invalid_request', detail);
    }
  });
}

/** Clerk-shaped ids: `user_…`, `org_…`, `orgmem_…`, and our `proj_…`. */
export const entityId = (prefix: string) =>
  z.string().regex(new RegExp(`^${prefix}_[A-Za-z0-9]{1,64}$`), `expected a ${prefix}_… id`);

export const DEFAULT_PAGE_LIMIT = 20;
export const MAX_PAGE_LIMIT = 100;

/** `limit`: a positive integer; values above the maximum are clamped, not refused. */
export const pageLimit = z.coerce
  .number()
  .int()
  .min(1)
  .default(DEFAULT_PAGE_LIMIT)
  .transform((n) => Math.min(n, MAX_PAGE_LIMIT));

/**
 * Opaque cursors: base64url of `<kind>:<last id>`. A tampered cursor fails to decode
 * or to match the kind and id shape, and is a 400.
 */
export function encodeCursor(kind: string, lastId: string): string {
  return btoa(`${kind}:${lastId}`).replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, '');
}

export function cursorOf(kind: string, idPrefix: string) {
  const shape = new RegExp(`^${kind}:(${idPrefix}_[A-Za-z0-9]{1,64})$`);
  return z
    .string()
    .max(200)
    .transform((cursor, ctx) => {
      let decoded = '';
      try {
        decoded = atob(cursor.replaceAll('-', '+').replaceAll('_', '/'));
      } catch {
        // fall through to the shape check
      }
      const match = shape.exec(decoded);
      if (!match) {
        ctx.addIssue({ code: 'custom', message: 'invalid cursor' });
        return z.NEVER;
      }
      return match[1]!;
    });
}
