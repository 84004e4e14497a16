import { sql } from 'drizzle-orm';
import type { Db } from './database.ts';
import journal from './migrations/meta/_journal.json' with { type: 'json' };

/** True when the newest committed migration has been applied (used by `GET /ready`). */
export async function migrationsApplied(db: Db): Promise<boolean> {
  const newest = journal.entries.at(-1)?.when ?? 0;
  try {
    const rows = await db.all<{ applied: number | null }>(
      sql`SELECT max(created_at) AS applied FROM __drizzle_migrations`,
    );
    return Number(rows[0]?.applied ?? 0) >= newest;
  } catch {
    return false; // no migrations table yet
  }
}
