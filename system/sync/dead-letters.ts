import { desc, eq } from 'drizzle-orm';
import type { Database } from '../db/database.ts';
import { type DeadLetter, deadLetters } from '../db/schema.ts';
import { type ApplyOutcome, applyDelivery } from './apply.ts';
import { parseClerkEvent } from './clerk-events.ts';

/**
 * Dead letters are signed payloads we could not use. They are kept verbatim, so once
 * the cause is fixed (a handler, a role mapping) they can be replayed through the same
 * apply path. A replay is itself a delivery (`replay:<id>`), so replaying twice
 * applies once.
 */
export function listDeadLetters(database: Database, limit = 50): Promise<DeadLetter[]> {
  return database.db.select().from(deadLetters).orderBy(desc(deadLetters.id)).limit(limit);
}

export async function getDeadLetter(database: Database, id: number): Promise<DeadLetter | null> {
  const rows = await database.db.select().from(deadLetters).where(eq(deadLetters.id, id));
  return rows[0] ?? null;
}

export type ReplayResult = { ok: true; outcome: ApplyOutcome } | { ok: false; reason: string };

export async function replayDeadLetter(
  database: Database,
  id: number,
  now: number = Date.now(),
): Promise<ReplayResult> {
  const letter = await getDeadLetter(database, id);
  if (letter === null) return { ok: false, reason: `no dead letter ${id}` };
  const parsed = parseClerkEvent(letter.payload, letter.receivedAt);
  if (parsed.kind === 'unusable') return { ok: false, reason: `still unusable: ${parsed.reason}` };
  const { outcome } = await applyDelivery(
    database.client,
    {
      svixId: `replay:${letter.id}`,
      sentAt: now,
      receivedAt: now,
      body: letter.payload,
      traceContext: null,
    },
    parsed,
  );
  await database.db.update(deadLetters).set({ replayedAt: now }).where(eq(deadLetters.id, id));
  return { ok: true, outcome };
}
