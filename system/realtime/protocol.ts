import type { ChangeRow } from '../db/schema.ts';

/**
 * The realtime protocol: JSON text frames over one WebSocket at `GET /ws`.
 * Subprotocol `dataflow.v1`; the session token rides as a second subprotocol
 * `bearer.<token>` (browsers cannot set headers on a WebSocket) or in `Authorization`.
 *
 * server -> client
 *   hello   { type, connectionId, orgId, lastEventId, heartbeatMs }
 *   change  { type, id, entity, entityId, op, version, data, traceparent }
 *   changes { type, changes: change[] }    several changes in id order, one frame (the
 *                                           hub's frame window); apply each as a change
 *   synced  { type, lastEventId }           the replay of a resume is complete
 *   reset   { type, reason, lastEventId }   cannot replay: refetch, then continue from lastEventId
 *   ping    { type, t }                     answer with pong
 *   pong    { type, t }
 *   error   { type, code, message }
 *   subscribed { type, orgId }
 *
 * Tracing: `/ws?traceparent=<W3C trace context>` makes the upgrade a `realtime.connect`
 * span of the caller's trace (each `change` carries the trace of the write that caused it).
 *
 * Resume: connect to `/ws?lastEventId=N` (N = the last change id the client applied):
 * after hello come the missed changes in order and `synced`, or a `reset`, before any
 * live change. An event id is not a secret, so the query string is fine for it.
 *
 * client -> server
 *   resume    { type, lastEventId }   replay everything after that id again (then synced),
 *                                     or reset; rows already applied must be skipped by id
 *   subscribe { type, orgId }         only the token's own org is allowed
 *   ping      { type, t? } / pong { type, t? }
 */
export const PROTOCOL = 'dataflow.v1';
export const BEARER_PROTOCOL_PREFIX = 'bearer.';

export type ResetReason = 'too_old' | 'unknown' | 'too_many' | 'backpressure';

export type ServerMessage =
  | { type: 'hello'; connectionId: string; orgId: string; lastEventId: number; heartbeatMs: number }
  | ChangeMessage
  | { type: 'changes'; changes: ChangeMessage[] }
  | { type: 'reset'; reason: ResetReason; lastEventId: number }
  | { type: 'synced'; lastEventId: number }
  | { type: 'ping'; t: number }
  | { type: 'pong'; t: number }
  | { type: 'error'; code: string; message: string }
  | { type: 'subscribed'; orgId: string };

export interface ChangeMessage {
  type: 'change';
  id: number;
  entity: ChangeRow['entity'];
  entityId: string;
  op: ChangeRow['op'];
  version: number;
  data: Record<string, unknown>;
  /** Trace context of the request that caused the change. */
  traceparent: string | null;
}

/** What a socket may send (validated by the servers with `client-message.ts`). */
export type ClientMessage =
  | { type: 'resume'; lastEventId: number }
  | { type: 'subscribe'; orgId: string }
  | { type: 'ping'; t?: number | undefined }
  | { type: 'pong'; t?: number | undefined };

export function changeMessage(row: ChangeRow): ChangeMessage {
  let data: Record<string, unknown> = {};
  try {
    data = JSON.parse(row.data) as Record<string, unknown>;
  } catch {
    // the column is written by our own SQL; keep the event even if data is odd
  }
  return {
    type: 'change',
    id: row.id,
    entity: row.entity,
    entityId: row.entityId,
    op: row.op,
    version: row.version,
    data,
    traceparent: row.traceContext,
  };
}
