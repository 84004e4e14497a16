import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { buildHistory, planDeliveries } from '../fixtures/clerk/storm.ts';
import { BENCH_DB_URL, benchSetup } from '../load/bench-setup.ts';
import { startLatencyRelay } from '../load/latency-relay.ts';
import { startServerProcess } from '../load/servers.ts';
import { sendDeliveries } from '../load/webhook-sender.ts';
import { DEV_KEYS_DIR } from '../system/env.ts';
import {
  type BenchOptions,
  BenchUsageError,
  benchOptionsFromEnv,
  PROFILE_SETTINGS,
  type ProfileSettings,
} from './config.ts';
import { buildFindings } from './findings.ts';
import { runMicro } from './micro.ts';
import { progressLine } from './progress.ts';
import { scrape, sum } from './prometheus-text.ts';
import {
  type BenchResults,
  type Figure,
  RESULTS_SCHEMA,
  renderTerminal,
  writeResults,
} from './results.ts';
import { burstSuite } from './suites/burst.ts';
import { Aborted, checkAborted, MIN_SAMPLES, type SuiteContext } from './suites/context.ts';
import { membersSuite } from './suites/members.ts';
import { projectsSuite } from './suites/projects.ts';

/**
 * One bench run: set-up, the selected suites, the findings, the files. Usable from
 * TypeScript (`runBench(options)`) and as `make bench` (main below). Every server it
 * starts is stopped at the end, also on failure or abort.
 */
export interface RunHooks {
  signal?: AbortSignal;
  progress?: (line: string) => void;
}

export async function runBench(options: BenchOptions, hooks: RunHooks = {}): Promise<BenchResults> {
  const signal = hooks.signal ?? new AbortController().signal;
  const progress = hooks.progress ?? (() => {});
  const settings = PROFILE_SETTINGS[options.profile];
  const startedAt = new Date();
  const figures: Figure[] = [];
  const warnings: string[] = [];
  const failures: string[] = [];
  const cleanups: Array<() => Promise<void> | void> = [];
  let incompleteReason: string | undefined;

  try {
    progress('setup: bench seed, keys');
    let dbUrl = BENCH_DB_URL;
    if (options.db === 'sqld') {
      const { startSqld } = await import('../test/support/sqld.ts');
      const sqld = await startSqld();
      cleanups.push(() => sqld.stop());
      dbUrl = sqld.url;
      if (options.rttMs > 0) {
        const target = new URL(sqld.url);
        const relay = await startLatencyRelay(
          { host: target.hostname, port: Number(target.port) },
          options.rttMs,
        );
        cleanups.push(() => relay.close());
        dbUrl = `http://127.0.0.1:${relay.port}`;
      }
    }
    const setup = await benchSetup(dbUrl);
    const secret = readFileSync(join(DEV_KEYS_DIR, 'webhook-secret'), 'utf8').trim();
    const ctx: SuiteContext = {
      options,
      settings,
      dbUrl,
      setup,
      signal,
      progress,
      warnings,
      cleanups,
    };
    const check = () => checkAborted(ctx);

    for (const suite of options.suites) {
      check();
      try {
        await runSuite(suite);
      } catch (error) {
        if (error instanceof Aborted || signal.aborted) throw error;
        failures.push(`${suite}: ${(error as Error).message.split('\n')[0]}`);
      }
    }
    async function runSuite(suite: (typeof options.suites)[number]): Promise<void> {
      if (suite === 'micro') {
        if (options.db !== 'file') {
          warnings.push('micro runs on the embedded database only; skipped with DB=sqld');
          return;
        }
        const orgMembers = setup.fixture.memberships.filter((m) => m.orgId === setup.org.id);
        const users = new Map(setup.fixture.users.map((u) => [u.id, u]));
        figures.push(
          ...(await runMicro(
            {
              dbUrl,
              keys: setup.keys,
              webhookSecret: secret,
              users: orgMembers.map((m) => users.get(m.userId)!).filter(Boolean),
              orgId: setup.org.id,
            },
            settings.microTimeMs,
            signal,
            progress,
          )),
        );
      }
      if (suite === 'members') figures.push(...(await membersSuite(ctx)));
      if (suite === 'projects') figures.push(...(await projectsSuite(ctx)));
      if (suite === 'burst') figures.push(...(await burstSuite(ctx)));
      if (suite === 'zipf') {
        for (const preset of options.presets) {
          check();
          if (options.profile !== 'full' && (preset === 'batch' || preset === 'coalesce')) {
            warnings.push(`zipf: ${preset} (no cache) runs in PROFILE=full only`);
            continue;
          }
          if (preset === 'cache-redis') {
            warnings.push(
              'zipf: the in-process mix has no Redis; cache-redis is measured by the members suite',
            );
            continue;
          }
          progress(`zipf: ${settings.zipfOps} ops, ${preset}`);
          const out = JSON.parse(
            await runScript(
              ['load/zipf-mix.ts', '--preset', preset, '--ops', String(settings.zipfOps)],
              signal,
            ),
          ) as { hitRatio: number | null; staleReads: number; opsPerSecond: number; reads: number };
          const base = {
            suite: 'zipf',
            scenario: 'Zipf read/write mix',
            preset,
            samples: out.reads,
          };
          figures.push(
            {
              ...base,
              metric: 'hit ratio',
              value: out.hitRatio === null ? null : Math.round(out.hitRatio * 1000) / 10,
              unit: '%',
            },
            { ...base, metric: 'stale reads', value: out.staleReads, unit: 'reads' },
            {
              ...base,
              metric: 'ops/s',
              value: out.opsPerSecond,
              unit: 'ops/s',
              note: 'in-process, sequential',
            },
          );
        }
      }
      if (suite === 'webhooks') {
        for (const preset of options.presets.filter(
          (p) => p === 'baseline' || p === 'recommended',
        )) {
          check();
          figures.push(
            ...(await webhookSuite(
              preset,
              settings,
              setup.keys.publicKey,
              secret,
              progress,
              cleanups,
            )),
          );
        }
      }
      if (suite === 'ws') {
        progress(
          `ws: ${settings.wsClients} clients, ${settings.wsRate} events/s, ${settings.wsSec}s`,
        );
        const out = JSON.parse(
          await runScript(
            [
              'load/ws-fanout.ts',
              '--clients',
              String(settings.wsClients),
              '--rate',
              String(settings.wsRate),
              '--duration',
              String(settings.wsSec),
              '--warmup',
              '1',
            ],
            signal,
          ),
        ) as {
          messagesMeasured: number;
          messagesExpected: number;
          latencyMs: { p50: number; p99: number; max: number };
        };
        const base = {
          suite: 'ws',
          scenario: 'fan-out to one org',
          preset: 'recommended',
          unit: 'ms',
          samples: out.messagesMeasured,
        };
        figures.push(
          { ...base, metric: 'delivery p50', value: out.latencyMs.p50 ?? null },
          {
            ...base,
            metric: 'delivery p99',
            value: out.messagesMeasured >= MIN_SAMPLES.p99 ? (out.latencyMs.p99 ?? null) : null,
            ...(out.messagesMeasured >= MIN_SAMPLES.p99
              ? {}
              : { note: `only ${out.messagesMeasured} samples` }),
          },
          {
            ...base,
            metric: 'messages delivered',
            value: out.messagesMeasured,
            unit: 'messages',
            note: `expected ${out.messagesExpected}`,
          },
        );
      }
    }
  } catch (error) {
    if (!(error instanceof Aborted) && !signal.aborted) throw error;
    incompleteReason = 'interrupted';
  } finally {
    for (const cleanup of cleanups.reverse()) await Promise.resolve(cleanup()).catch(() => {});
  }

  const results: BenchResults = {
    schema: RESULTS_SCHEMA,
    runId: `${startedAt.toISOString().replace(/[:.]/g, '-')}-${options.profile}`,
    complete: incompleteReason === undefined,
    ...(incompleteReason ? { incompleteReason } : {}),
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    machine: {
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model ?? 'unknown',
      memoryGiB: Math.round(totalmem() / 2 ** 30),
      node: process.version,
      platform: `${process.platform}-${process.arch}`,
    },
    git: gitState(),
    config: { ...options, settings },
    figures,
    findings: buildFindings(figures, options),
    warnings,
    failures,
  };
  return results;
}

async function webhookSuite(
  preset: string,
  settings: ProfileSettings,
  publicKey: string,
  secret: string,
  progress: (line: string) => void,
  cleanups: Array<() => Promise<void> | void>,
): Promise<Figure[]> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-webhooks-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const server = await startServerProcess({
    DATABASE_URL: `file:${join(dir, 'app.db')}`,
    CLERK_JWT_KEY: publicKey,
    CLERK_WEBHOOK_SIGNING_SECRET: secret,
    DATAFLOW_PRESET: preset,
  });
  try {
    progress(`webhooks: ${settings.webhookEvents} signed events, ${preset}`);
    // the network's habits: some duplicates and reordering (signed, all valid)
    const deliveries = planDeliveries(buildHistory({ seed: 7, count: settings.webhookEvents }), {
      seed: 7,
      duplicates: 0.1,
      reorder: 0.2,
    });
    const summary = await sendDeliveries(deliveries, { url: server.url, secret, concurrency: 32 });
    const valid = summary.results.filter((r) => r.delivery.kind === 'valid');
    const lost = valid.filter((r) => r.status !== 200).length + summary.unexpected.length;
    const perSecond = Math.round((valid.length / summary.elapsedMs) * 1000);
    const metrics = await scrape(server.url);
    const mean = (name: string) => {
      const count = sum(metrics, `${name}_count`);
      return count > 0 ? Math.round((sum(metrics, `${name}_sum`) / count) * 1e4) / 10 : null;
    };
    const base = { suite: 'webhooks', scenario: 'webhook storm', preset, samples: valid.length };
    return [
      {
        ...base,
        metric: 'verified events/s',
        value: perSecond,
        unit: 'events/s',
        note: 'svix-verified, applied or deduplicated, concurrency 32, embedded DB',
      },
      { ...base, metric: 'lost events', value: lost, unit: 'events' },
      {
        ...base,
        metric: 'server apply time (mean)',
        value: mean('sync_webhook_apply_duration'),
        unit: 'ms',
        note: 'sync.webhook.apply.duration: dedupe + apply + change log, one write batch',
      },
      {
        ...base,
        metric: 'webhook lag (mean)',
        value: mean('sync_webhook_lag'),
        unit: 'ms',
        note: 'sync.webhook.lag: svix timestamp to receipt, applied events',
      },
    ];
  } finally {
    await server.stop();
  }
}

/** Runs a measurement script as its own process; its stdout (JSON) is the result. */
function runScript(args: string[], signal: AbortSignal): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      err = (err + d.toString()).slice(-4000);
    });
    const stop = () => child.kill('SIGTERM');
    signal.addEventListener('abort', stop, { once: true });
    child.on('exit', (code) => {
      signal.removeEventListener('abort', stop);
      if (signal.aborted) reject(new Aborted());
      else if (code === 0) resolve(out);
      else reject(new Error(`${args[0]} exited ${code}: ${err}`));
    });
  });
}

function gitState(): { sha: string; dirty: boolean } {
  try {
    const sha = execFileSync('git', ['rev-parse', 'HEAD'], { encoding: 'utf8' }).trim();
    const dirty =
      execFileSync('git', ['status', '--porcelain'], { encoding: 'utf8' }).trim() !== '';
    return { sha, dirty };
  } catch {
    return { sha: 'unknown', dirty: false };
  }
}

async function main(): Promise<number> {
  let options: BenchOptions;
  try {
    options = benchOptionsFromEnv(process.env);
  } catch (error) {
    if (error instanceof BenchUsageError) {
      console.error(`make bench: ${error.message}`);
      return 2;
    }
    throw error;
  }
  const controller = new AbortController();
  process.on('SIGINT', () => {
    if (controller.signal.aborted) {
      console.error('interrupted twice: exiting without saving');
      process.exit(130);
    }
    console.error(
      '\ninterrupted: stopping servers, saving partial results… (Ctrl-C again to quit now)',
    );
    controller.abort();
  });
  const progress = progressLine();
  const results = await runBench(options, { signal: controller.signal, progress: progress.update });
  progress.done();
  const dir = writeResults(results);
  console.log(renderTerminal(results));
  console.log(`\nresults: ${dir}/results.json, ${dir}/report.md (results/latest)`);
  for (const failure of results.failures) console.error(`suite failed: ${failure}`);
  if (!results.complete) return 130;
  return results.failures.length > 0 ? 1 : 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await main();
}
