import Libsql from 'libsql';
import { openDatabase } from '../../system/db/client.ts';
import { getMembership } from '../../system/db/queries/memberships.ts';

/**
 * One indexed single-row lookup (a membership by org and user), interleaved in rounds:
 * the raw driver's prepared statement against the app's `getMembership` over the same
 * file, each timed per batch of calls. Run from its bundle (`bundled()`, built as the
 * production server is), so the app's side is the code as deployed: under `tsx` every
 * closure the DB layer makes per call also pays esbuild's `__name` wrapper. Prints
 * `{ rawUs, appUs }` (µs per call, one entry per round) as JSON.
 *
 * Env: `DB_FILE`, `ORG_ID`, `USER_ID`, `CALLS` (per round), `ROUNDS`.
 */
const env = (name: string) => {
  const value = process.env[name];
  if (!value) throw new Error(`db-layer-probe: ${name} is not set`);
  return value;
};
const file = env('DB_FILE');
const orgId = env('ORG_ID');
const userId = env('USER_ID');
const calls = Number(env('CALLS'));
const rounds = Number(env('ROUNDS'));

const raw = new Libsql(file);
const database = await openDatabase({ url: `file:${file}` });
try {
  const statement = raw.prepare(
    'SELECT * FROM memberships WHERE org_id = ? AND user_id = ? AND deleted_at IS NULL LIMIT 1',
  );
  const rawLookup = () => statement.get(orgId, userId);
  const appLookup = () => getMembership(database.db, orgId, userId);
  if (!rawLookup() || !(await appLookup())) throw new Error('the looked-up membership is missing');
  const time = async (fn: () => unknown) => {
    const t0 = performance.now();
    for (let i = 0; i < calls; i++) await fn();
    return ((performance.now() - t0) * 1000) / calls;
  };
  // a fresh process: the first rounds of each run 2x slower, steady from the fourth
  for (let r = 0; r < 4; r++) {
    await time(rawLookup);
    await time(appLookup);
  }
  const rawUs: number[] = [];
  const appUs: number[] = [];
  for (let r = 0; r < rounds; r++) {
    rawUs.push(await time(rawLookup));
    appUs.push(await time(appLookup));
  }
  process.stdout.write(`${JSON.stringify({ rawUs, appUs })}\n`);
} finally {
  raw.close();
  await database.close();
}
