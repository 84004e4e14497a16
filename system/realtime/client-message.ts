import { z } from 'zod';
import type { ClientMessage } from './protocol.ts';

/**
 * Validation of what a socket sends, for the servers (the Node hub, the Worker's org
 * object). Apart from `protocol.ts` so that the browser client, which only sends these
 * messages, does not bundle zod; typed against `ClientMessage` so the two cannot drift.
 */
export const clientMessage: z.ZodType<ClientMessage> = z.discriminatedUnion('type', [
  z.object({ type: z.literal('resume'), lastEventId: z.number().int().nonnegative() }),
  z.object({ type: z.literal('subscribe'), orgId: z.string().min(1).max(100) }),
  z.object({ type: z.literal('ping'), t: z.number().optional() }),
  z.object({ type: z.literal('pong'), t: z.number().optional() }),
]);
