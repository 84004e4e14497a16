import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { closedLoad } from '../../load/autocannon.ts';
import { type ServerProcess, startServerProcess } from '../../load/infra/server-process.ts';
import type { Figure } from '../results.ts';
import { median } from '../stats.ts';
import { type BenchSuite, checkAborted, productionEnv, type SuiteContext } from './context.ts';

/**
 * Instrumentation overhead, interleaved in one run: the members page (limit 50) on the
 * cache-hit path (`cache-memory`) and the DB path (`baseline`), each with telemetry
 * off, on at the production default sampling (10%), and on at 100%: traces exported
 * over OTLP/HTTP to a sink process, Prometheus metrics on.
 */
export const telemetrySuite: BenchSuite = {
  description:
    'telemetry overhead: members page, cache-hit and DB paths, telemetry off / 10% / 100% sampling (OTLP to a sink)',
  databases: ['file'],
  run: telemetry,
};

const PATHS = { 'cache hit': 'cache-memory', 'DB path': 'baseline' } as const;

async function telemetry(ctx: SuiteContext): Promise<Figure[]> {
  const { settings, setup } = ctx;
  const dir = mkdtempSync(join(tmpdir(), 'bench-telemetry-'));
  ctx.cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  copyFileSync('.data/bench.db', join(dir, 'bench.db'));
  ctx.progress('telemetry: starting an OTLP sink and six app processes');
  const sink = await startServerProcess({}, 'load/infra/otlp-sink.ts');
  ctx.cleanups.push(() => sink.stop());
  const modes: Record<string, Record<string, string>> = {
    off: { METRICS_ENABLED: 'false' },
    'on 10%': { OTEL_EXPORTER_OTLP_ENDPOINT: sink.url, OTEL_TRACES_SAMPLER_ARG: '0.1' },
    'on 100%': { OTEL_EXPORTER_OTLP_ENDPOINT: sink.url, OTEL_TRACES_SAMPLER_ARG: '1' },
  };
  const servers = new Map<string, ServerProcess>();
  const key = (path: string, mode: string) => `${path}|${mode}`;
  try {
    await Promise.all(
      Object.entries(PATHS).flatMap(([path, preset]) =>
        Object.entries(modes).map(async ([mode, env]) => {
          const server = await startServerProcess(
            productionEnv(ctx, {
              DATABASE_URL: `file:${join(dir, 'bench.db')}`,
              DATAFLOW_PRESET: preset,
              OTEL_METRIC_EXPORT_INTERVAL: '60000',
              ...env,
            }),
          );
          servers.set(key(path, mode), server);
          ctx.cleanups.push(() => server.stop());
        }),
      ),
    );
    const rps = new Map<string, number[]>();
    for (let round = 1; round <= settings.rounds; round++) {
      for (const path of Object.keys(PATHS)) {
        for (const mode of Object.keys(modes)) {
          checkAborted(ctx);
          ctx.progress(`telemetry: round ${round}/${settings.rounds}, ${path}, ${mode}`);
          const options = {
            url: servers.get(key(path, mode))!.url + setup.membersPath,
            headers: setup.auth,
            connections: settings.connections,
          };
          if (settings.warmupSec > 0) {
            await closedLoad({ ...options, duration: settings.warmupSec }, ctx.signal);
          }
          const r = await closedLoad({ ...options, duration: settings.loadSec }, ctx.signal);
          rps.set(key(path, mode), [...(rps.get(key(path, mode)) ?? []), r.requests.average]);
        }
      }
    }
    checkAborted(ctx);
    const figures: Figure[] = [];
    for (const [path, preset] of Object.entries(PATHS)) {
      const off = median(rps.get(key(path, 'off'))!);
      for (const mode of Object.keys(modes)) {
        const runs = rps.get(key(path, mode))!;
        const value = median(runs);
        const base = {
          suite: 'telemetry',
          scenario: `members page limit=50, ${path}`,
          preset,
          samples: runs.length,
        };
        figures.push({
          ...base,
          metric: `req/s: telemetry ${mode}`,
          value: Math.round(value),
          unit: 'req/s',
          note: `closed model, ${settings.connections} connections, median of ${runs.length}`,
        });
        if (mode !== 'off') {
          figures.push({
            ...base,
            metric: `overhead: telemetry ${mode}`,
            value: Math.round((1 - value / off) * 1000) / 10,
            unit: '%',
            note: 'throughput lost against telemetry off, same run',
          });
        }
      }
    }
    return figures;
  } finally {
    await Promise.all([...servers.values(), sink].map((s) => s.stop()));
  }
}
