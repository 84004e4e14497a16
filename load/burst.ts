import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { createApp } from '../system/api/app.ts';
import { createSessionVerifier } from '../system/auth/verifier.ts';
import { openDatabase } from '../system/db/client.ts';
import { PRESET_NAMES, resolveLevers } from '../system/levers/presets.ts';
import { leverAppOptions } from '../system/levers/wiring.ts';
import { BENCH_DB_URL, benchSetup } from './bench-setup.ts';

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
    json: { type: 'boolean', default: false },
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
let url = BENCH_DB_URL;
let sqld: { url: string; stop(): Promise<void> } | undefined;
if (values.db === 'sqld') {
  sqld = await (await import('../test/support/sqld.ts')).startSqld();
  url = sqld.url;
}
const { keys, token, membersPath: path } = await benchSetup(url);
// the cache-redis preset needs a Redis: a throwaway one on loopback
const redisServer = await (await import('../test/support/redis.ts')).startRedis();
const redisClient = new Redis(redisServer.url);
const database = await openDatabase({ url });
// --json: one JSON array on stdout (for make bench); the table goes to stderr
const print = values.json ? console.error : console.log;
const rows: Array<{ preset: string; roundTrips: number; perRequest: number; statuses: string }> =
  [];
print(
  `cold burst of ${requests} identical ${path.replace(/org_\w+/, ':orgId')} on ${values.db}, coalesce window ${window} ms`,
);
print('| preset | DB round trips | per request | statuses |');
print('| --- | ---: | ---: | --- |');
for (const preset of PRESET_NAMES) {
  const levers = resolveLevers(preset, { coalesce: { window } });
  const app = createApp({
    database,
    sessions: createSessionVerifier({ jwtKey: keys.publicKey }),
    ...leverAppOptions(levers, { redis: redisClient }),
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
  print(`| ${preset} | ${trips} | ${(trips / requests).toFixed(2)} | ${statuses} |`);
  rows.push({ preset, roundTrips: trips, perRequest: trips / requests, statuses });
}
if (values.json) console.log(JSON.stringify(rows));
database.close();
redisClient.disconnect();
await redisServer.stop();
await sqld?.stop();
