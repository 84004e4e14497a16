import { ensureDevKeys, ensureDevWebhookSecret } from '../fixtures/auth/keys.ts';
import { mintSessionToken } from '../fixtures/auth/token.ts';
import { type Fixture, generateFixture, largestOrg } from '../fixtures/seed/generate.ts';
import { isEmpty, loadFixture } from '../fixtures/seed/load.ts';
import { openDatabase } from '../system/db/client.ts';
import { runMigrations } from '../system/db/migrate.ts';
import { DEV_KEYS_DIR } from '../system/env.ts';

/** The embedded database the measurement scripts share (the `bench` seed). */
export const BENCH_DB_FILE = '.data/bench.db';
export const BENCH_DB_URL = `file:${BENCH_DB_FILE}`;

let benchFixture: Fixture | undefined;

/**
 * What every measurement script needs: the bench fixture in the database at `url`
 * (migrated, seeded when empty), the dev keys, and a session token for an admin of the
 * largest org, whose members page is the audit's N+1 example.
 */
export async function benchSetup(url: string = BENCH_DB_URL) {
  // the same rows every time (a fixed seed): a run that seeds its remote sqld too makes them once
  benchFixture ??= generateFixture('bench');
  const fixture = benchFixture;
  const database = await openDatabase({ url });
  await runMigrations(database.db); // an older bench DB gets new tables too
  if (await isEmpty(database)) await loadFixture(database, fixture);
  // everything into the main file: the suites copy that file alone (copyBenchDatabase), and
  // a run killed before its close would leave committed rows in the WAL beside it
  if (url.startsWith('file:')) await database.client.execute('PRAGMA wal_checkpoint(TRUNCATE)');
  await database.close();
  // a fresh clone has none yet: create them as `make setup` would
  const { privateKey, publicKey } = ensureDevKeys(DEV_KEYS_DIR);
  const keys = { privateKey, publicKey };
  ensureDevWebhookSecret(DEV_KEYS_DIR);
  const { org, admin } = largestOrg(fixture);
  const token = await mintSessionToken({
    privateKeyPem: keys.privateKey,
    userId: admin.id,
    orgId: org.id,
    role: 'admin',
  });
  return {
    fixture,
    keys,
    org,
    admin,
    token,
    membersPath: `/api/orgs/${org.id}/members?limit=50`,
    auth: { authorization: `Bearer ${token}` },
  };
}
