import { createApp } from '../system/api/app.ts';
import { createSessionVerifier } from '../system/auth/verifier.ts';
import { openDatabase } from '../system/db/client.ts';
import { median, parseAbArgs } from './ab-args.ts';
import { BENCH_DB_URL, benchSetup } from './bench-setup.ts';
import { type Measurement, measure } from './measure.ts';
import { startServerProcess } from './servers.ts';

/**
 * Foundation figures, A/B interleaved in one run on this machine:
 *  - GET /health of the app vs a bare node:http hello server
 *  - GET /api/orgs/:orgId/members?limit=50 (bench seed) with the token cache on vs off
 *  - DB round trips per members request
 *
 *   npx tsx load/foundation-ab.ts [--rounds 3] [--duration 5] [--connections 16]
 */
const { rounds, durationSec, connections } = parseAbArgs('foundation-ab');

const DB_URL = BENCH_DB_URL;
const { keys, membersPath, auth } = await benchSetup(DB_URL);

// Round trips per members request, counted by the DB layer in-process.
const counted = await openDatabase({ url: DB_URL });
const app = createApp({
  database: counted,
  sessions: createSessionVerifier({ jwtKey: keys.publicKey }),
});
const before = counted.stats().roundTrips;
for (let i = 0; i < 10; i++) await app.request(membersPath, { headers: auth });
const roundTripsPerRequest = (counted.stats().roundTrips - before) / 10;
counted.close();

const env = {
  DATABASE_URL: DB_URL,
  CLERK_JWT_KEY: keys.publicKey,
  DB_MIGRATE_ON_START: 'false',
  DATAFLOW_PRESET: 'baseline',
};
const servers = {
  hello: await startServerProcess({}, 'load/hello-server.ts'),
  appCacheOn: await startServerProcess({ ...env, AUTH_TOKEN_CACHE: 'on' }),
  appCacheOff: await startServerProcess({ ...env, AUTH_TOKEN_CACHE: 'off' }),
};

const pairs = [
  ['bare node:http hello', () => servers.hello.url, '/', {}],
  ['app GET /health', () => servers.appCacheOn.url, '/health', {}],
  ['members limit=50, token cache on', () => servers.appCacheOn.url, membersPath, auth],
  ['members limit=50, token cache off', () => servers.appCacheOff.url, membersPath, auth],
] as const;
const results = new Map<string, Measurement[]>();
try {
  for (let round = 1; round <= rounds; round++) {
    for (const [name, base, path, headers] of pairs) {
      const m = await measure({ url: base() + path, headers, connections, durationSec });
      results.set(name, [...(results.get(name) ?? []), m]);
      console.error(`round ${round}/${rounds} ${name}: ${Math.round(m.rps)} req/s`);
    }
  }
} finally {
  await Promise.all(Object.values(servers).map((s) => s.stop()));
}

console.log(
  `\n${rounds} interleaved rounds x ${durationSec}s, ${connections} connections, bench seed`,
);
console.log('| scenario | req/s (median) | p50 ms | p99 ms | requests | errors + non-2xx |');
console.log('| --- | ---: | ---: | ---: | ---: | ---: |');
for (const [name, ms] of results) {
  console.log(
    `| ${name} | ${Math.round(median(ms.map((m) => m.rps)))} | ${median(ms.map((m) => m.p50Ms))} | ` +
      `${median(ms.map((m) => m.p99Ms))} | ${ms.reduce((a, m) => a + m.requests, 0)} | ` +
      `${ms.reduce((a, m) => a + m.errors + m.non2xx, 0)} |`,
  );
}
console.log(`\nDB round trips per members request (limit 50): ${roundTripsPerRequest}`);
