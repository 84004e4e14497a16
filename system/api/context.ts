import type { Context } from 'hono';
import type { Session } from '../auth/session.ts';
import type { Db } from '../db/database.ts';
import type { Loaders } from '../db/loaders.ts';
import type { Membership } from '../db/schema.ts';
import { type RequestTimings, type RequestTrace, UNTRACED } from '../trace.ts';

/** Per-request values set by middleware, typed for every handler. */
export interface AppEnv {
  Variables: {
    requestId: string;
    /** The verified caller (set by `requireSession`). */
    session: Session;
    /** Where this request's stages add their time (set by the telemetry middleware when on). */
    timings: RequestTimings | undefined;
    /** The request's span (when sampled) and Server-Timing timings, handed to each stage. */
    trace: RequestTrace | undefined;
    /** The database for this request: its calls count in its `timings` (`Database.forRequest`). */
    db: Db;
    /** Entity loaders for this request (direct, or batched by the batching lever). */
    loaders: Loaders;
    /** The caller's live membership in the org of the path (set by `requireOrgMember`). */
    member: Membership;
    /** Tags of the rows read while building a cacheable response (set by the cache lever). */
    cacheTags: Set<string> | undefined;
    /** The webhook body, when the runtime's reader took it (`BodyReader`). */
    rawBody: string | undefined;
  };
}

/** What this request's stages report to (`UNTRACED` without the telemetry middleware). */
export function traceOf(c: Context<AppEnv>): RequestTrace {
  return c.get('trace') ?? UNTRACED;
}
