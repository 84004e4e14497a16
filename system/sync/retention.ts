import { lt } from 'drizzle-orm';
import type { Database } from '../db/database.ts';
import { pruneChangeLog } from '../db/queries/changes.ts';
import { webhookDeliveries } from '../db/schema.ts';

/**
 * Delivery records must outlive Svix's retry schedule (about 27 hours) or a late
 * redelivery would be applied twice; the change log bounds how far back a WebSocket
 * client can resume. Both are pruned by age.
 */
export interface RetentionOptions {
  deliveriesMs: number;
  changeLogMs: number;
}

export const MIN_DELIVERY_RETENTION_MS = 27 * 3600_000;

export async function pruneSyncTables(
  database: Database,
  retention: RetentionOptions,
  now: number = Date.now(),
): Promise<{ deliveries: number; changes: number }> {
  const keepDeliveries = Math.max(retention.deliveriesMs, MIN_DELIVERY_RETENTION_MS);
  const deliveries = await database.db
    .delete(webhookDeliveries)
    .where(lt(webhookDeliveries.receivedAt, now - keepDeliveries));
  const changes = await pruneChangeLog(database.db, now - retention.changeLogMs);
  return { deliveries: deliveries.rowsAffected, changes };
}

/** Prunes both tables every `everyMs` in the background; `close()` stops it. */
export function startRetention(
  database: Database,
  retention: RetentionOptions & { everyMs: number },
  onError: (error: unknown) => void,
): { close(): void } {
  const timer = setInterval(() => {
    pruneSyncTables(database, retention).catch(onError);
  }, retention.everyMs);
  (timer as { unref?: () => void }).unref?.();
  return { close: () => clearInterval(timer) };
}
