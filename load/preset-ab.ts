import { PRESET_NAMES } from '../system/levers/presets.ts';
import { median, parseAbArgs } from './ab-args.ts';
import { BENCH_DB_URL, benchSetup } from './bench-setup.ts';
import { type Measurement, measure } from './measure.ts';
import { type ServerProcess, startServerProcess } from './servers.ts';

/**
 * Members page (limit 50, bench seed) per lever preset, A/B interleaved in one run:
 * req/s, p50/p99, and DB round trips per request read from a server-side counter.
 *
 *   npx tsx load/preset-ab.ts [--db file|sqld] [--rounds 3] [--duration 5] [--connections 16]
 */
const { values, rounds, durationSec, connections } = parseAbArgs('preset-ab', {
  db: { type: 'string', default: 'file' },
});
if (values.db !== 'file' && values.db !== 'sqld') {
  console.error(`preset-ab: --db must be file or sqld, got ${JSON.stringify(values.db)}`);
  process.exit(2);
}

let dbUrl = BENCH_DB_URL;
let sqld: { stop(): Promise<void> } | undefined;
if (values.db === 'sqld') {
  const { startSqld } = await import('../test/support/sqld.ts');
  const server = await startSqld();
  sqld = server;
  dbUrl = server.url;
}
const { keys, membersPath: path, auth: headers } = await benchSetup(dbUrl);

// the cache-redis preset needs a Redis: a throwaway one on loopback
const redis = await (await import('../test/support/redis.ts')).startRedis();
const servers = new Map<string, ServerProcess>();
try {
  for (const preset of PRESET_NAMES) {
    servers.set(
      preset,
      await startServerProcess({
        DATABASE_URL: dbUrl,
        CLERK_JWT_KEY: keys.publicKey,
        DB_MIGRATE_ON_START: 'false',
        DATAFLOW_PRESET: preset,
        REDIS_URL: redis.url,
      }),
    );
  }
  const results = new Map<string, Measurement[]>();
  for (let round = 1; round <= rounds; round++) {
    for (const [preset, server] of servers) {
      const m = await measure({ url: server.url + path, headers, connections, durationSec });
      results.set(preset, [...(results.get(preset) ?? []), m]);
      console.error(`round ${round}/${rounds} ${preset}: ${Math.round(m.rps)} req/s`);
    }
  }
  const base = median(results.get('baseline')!.map((m) => m.rps));
  console.log(
    `\nmembers limit=50, ${values.db} DB, bench seed, ${rounds} interleaved rounds x ${durationSec}s, ${connections} connections`,
  );
  console.log(
    '| preset | req/s (median) | vs baseline | p50 ms | p99 ms | requests | errors + non-2xx |',
  );
  console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const [preset, ms] of results) {
    const rps = median(ms.map((m) => m.rps));
    console.log(
      `| ${preset} | ${Math.round(rps)} | ${(rps / base).toFixed(2)}x | ${median(ms.map((m) => m.p50Ms))} | ` +
        `${median(ms.map((m) => m.p99Ms))} | ${ms.reduce((a, m) => a + m.requests, 0)} | ${ms.reduce((a, m) => a + m.errors + m.non2xx, 0)} |`,
    );
  }
} finally {
  await Promise.all([...servers.values()].map((s) => s.stop()));
  await redis.stop();
  await sqld?.stop();
}
