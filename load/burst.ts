import { parseArgs } from 'node:util';
import { readDevKeys } from '../fixtures/auth/keys.ts';
import { mintSessionToken } from '../fixtures/auth/token.ts';
import { generateFixture, largestOrg } from '../fixtures/seed/generate.ts';
import { isEmpty, loadFixture } from '../fixtures/seed/load.ts';
import { createApp } from '../system/api/app.ts';
import { createSessionVerifier } from '../system/auth/verifier.ts';
import { openDatabase } from '../system/db/client.ts';
import { directLoaders } from '../system/db/loaders.ts';
import { runMigrations } from '../system/db/migrate.ts';
import { batchedLoaders } from '../system/levers/batch.ts';
import { PRESET_NAMES, resolveLevers } from '../system/levers/presets.ts';
import { DEV_KEYS_DIR } from '../system/node.ts';

/**
 * A cold burst: N identical members requests (limit 50, bench seed) fired at once at
 * the app (in-process, real database), per preset; prints the DB round trips the burst
 * cost. Counting is exact (the DB layer's counter), so this is a deterministic figure.
 *
 *   npx tsx load/burst.ts [--db file|sqld] [--requests 200] [--window 0]
 */
const { values } = parseArgs({
  options: {
    db: { type: 'string', default: 'file' },
    requests: { type: 'string', default: '200' },
    window: { type: 'string', default: '0' },
  },
  strict: true,
});
const requests = Number(values.requests);
const window = Number(values.window);
if (
  !Number.isInteger(requests) ||
  requests < 1 ||
  !(Number.isFinite(window) && window >= 0) ||
  !['file', 'sqld'].includes(values.db ?? '')
) {
  console.error('burst: --db file|sqld, --requests a positive integer, --window milliseconds >= 0');
  process.exit(2);
}
const fixture = generateFixture('bench');
const { org, admin } = largestOrg(fixture);
const keys = readDevKeys(DEV_KEYS_DIR);
let url = 'file:.data/bench.db';
let sqld: { url: string; stop(): Promise<void> } | undefined;
if (values.db === 'sqld') {
  sqld = await (await import('../test/support/sqld.ts')).startSqld();
  url = sqld.url;
}
const database = await openDatabase({ url });
await runMigrations(database.db);
if (await isEmpty(database)) await loadFixture(database, fixture);
const token = await mintSessionToken({
  privateKeyPem: keys.privateKey,
  userId: admin.id,
  orgId: org.id,
});
const path = `/api/orgs/${org.id}/members?limit=50`;
console.log(
  `cold burst of ${requests} identical ${path.replace(org.id, ':orgId')} on ${values.db}, coalesce window ${window} ms`,
);
console.log('| preset | DB round trips | per request | statuses |');
console.log('| --- | ---: | ---: | --- |');
for (const preset of PRESET_NAMES) {
  const levers = resolveLevers(preset, { coalesce: { window } });
  const app = createApp({
    database,
    sessions: createSessionVerifier({ jwtKey: keys.publicKey }),
    loaders: levers.batch.enabled ? batchedLoaders(levers.batch) : directLoaders,
    coalesce: levers.coalesce,
  });
  await app.request('/api/me', { headers: { authorization: `Bearer ${token}` } }); // warm the token cache
  const before = database.stats().roundTrips;
  const responses = await Promise.all(
    Array.from({ length: requests }, () =>
      app.request(path, { headers: { authorization: `Bearer ${token}` } }),
    ),
  );
  const trips = database.stats().roundTrips - before;
  const statuses = [...new Set(responses.map((r) => r.status))].join(',');
  console.log(`| ${preset} | ${trips} | ${(trips / requests).toFixed(2)} | ${statuses} |`);
}
database.close();
await sqld?.stop();
