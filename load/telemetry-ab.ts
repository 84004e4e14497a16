import { median, parseAbArgs } from './ab-args.ts';
import { BENCH_DB_URL, benchSetup } from './bench-setup.ts';
import { type Measurement, measure } from './measure.ts';
import { type ServerProcess, startServerProcess } from './servers.ts';

/**
 * Instrumentation overhead, A/B interleaved in one run: the members page (limit 50) on
 * the cache-hit path (`cache-memory`) and the DB path (`baseline`), each with telemetry
 * off, on at the production default sampling (10%), and on at 100% — traces exported
 * over OTLP/HTTP to a sink process, Prometheus metrics on.
 *
 *   npx tsx load/telemetry-ab.ts [--rounds 3] [--duration 5] [--connections 16]
 */
const { rounds, durationSec, connections } = parseAbArgs('telemetry-ab');

const { keys, membersPath: path, auth: headers } = await benchSetup(BENCH_DB_URL);
const sink = await startServerProcess({}, 'load/otlp-sink.ts');

const TELEMETRY: Record<string, Record<string, string>> = {
  off: { METRICS_ENABLED: 'false', SERVER_TIMING: 'false' },
  'on 10%': {
    OTEL_EXPORTER_OTLP_ENDPOINT: sink.url,
    OTEL_METRIC_EXPORT_INTERVAL: '60000',
    OTEL_TRACES_SAMPLER_ARG: '0.1',
    SERVER_TIMING: 'false',
  },
  'on 100%': {
    OTEL_EXPORTER_OTLP_ENDPOINT: sink.url,
    OTEL_METRIC_EXPORT_INTERVAL: '60000',
    OTEL_TRACES_SAMPLER_ARG: '1',
    SERVER_TIMING: 'false',
  },
};
const PATHS: Record<string, string> = { 'cache hit': 'cache-memory', 'DB path': 'baseline' };

const servers = new Map<string, ServerProcess>();
try {
  for (const [pathName, preset] of Object.entries(PATHS)) {
    for (const [mode, env] of Object.entries(TELEMETRY)) {
      servers.set(
        `${pathName}|${mode}`,
        await startServerProcess({
          DATABASE_URL: BENCH_DB_URL,
          CLERK_JWT_KEY: keys.publicKey,
          DB_MIGRATE_ON_START: 'false',
          DATAFLOW_PRESET: preset,
          ...env,
        }),
      );
    }
  }
  const results = new Map<string, Measurement[]>();
  for (let round = 1; round <= rounds; round++) {
    for (const [name, server] of servers) {
      const m = await measure({ url: server.url + path, headers, connections, durationSec });
      results.set(name, [...(results.get(name) ?? []), m]);
      console.error(
        `round ${round}/${rounds} ${name}: ${Math.round(m.rps)} req/s p99 ${m.p99Ms} ms`,
      );
    }
  }
  console.log(
    `\nmembers limit=50, file DB, bench seed, ${rounds} interleaved rounds x ${durationSec}s, ${connections} connections`,
  );
  console.log(
    '| path | telemetry | req/s (median) | vs off | p50 ms | p99 ms | requests | errors |',
  );
  console.log('| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const pathName of Object.keys(PATHS)) {
    const off = median(results.get(`${pathName}|off`)!.map((m) => m.rps));
    for (const mode of Object.keys(TELEMETRY)) {
      const ms = results.get(`${pathName}|${mode}`)!;
      const rps = median(ms.map((m) => m.rps));
      console.log(
        `| ${pathName} | ${mode} | ${Math.round(rps)} | ${((rps / off - 1) * 100).toFixed(1)}% | ` +
          `${median(ms.map((m) => m.p50Ms))} | ${median(ms.map((m) => m.p99Ms))} | ` +
          `${ms.reduce((a, m) => a + m.requests, 0)} | ${ms.reduce((a, m) => a + m.errors + m.non2xx, 0)} |`,
      );
    }
  }
} finally {
  await Promise.all([...servers.values()].map((s) => s.stop()));
  await sink.stop();
}
