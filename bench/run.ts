import { execFileSync } from 'node:child_process';
import { setMaxListeners } from 'node:events';
import { readFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { BENCH_DB_URL, benchSetup } from '../load/bench-setup.ts';
import { startLatencyRelay } from '../load/infra/latency-relay.ts';
import { startSqld } from '../load/infra/sqld.ts';
import { DEV_WEBHOOK_SECRET_FILE } from '../system/env.ts';
import { writeReportHtml } from './charts.ts';
import {
  type BenchOptions,
  BenchUsageError,
  benchOptionsFromEnv,
  PROFILE_SETTINGS,
} from './config.ts';
import { buildFindings } from './findings.ts';
import {
  compareProfiles,
  type ProfileComparison,
  type ProfileSummary,
  summarizeProfiles,
} from './profiles.ts';
import { progressLine } from './progress.ts';
import {
  type BenchResults,
  type Figure,
  RESULTS_SCHEMA,
  renderTerminal,
  writeResults,
} from './results.ts';
import type { RemoteDb } from './suites/context.ts';
import { Aborted, checkAborted, type SuiteContext } from './suites/context.ts';
import { BENCH_SUITES } from './suites/index.ts';

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
  // every child process, fetch and wait of a suite listens on the signal while it runs
  setMaxListeners(64, signal);
  const progress = hooks.progress ?? (() => {});
  const settings = PROFILE_SETTINGS[options.profile];
  const startedAt = new Date();
  const runId = `${startedAt.toISOString().replace(/[:.]/g, '-')}-${options.profile}`;
  const figures: Figure[] = [];
  const warnings: string[] = [];
  const failures: string[] = [];
  const cleanups: Array<() => Promise<void> | void> = [];
  let incompleteReason: string | undefined;

  try {
    progress('setup: bench seed, keys');
    // the remote database: a real sqld, seeded with the bench fixture, behind a relay that
    // adds the round trip of an edge -> Turso hop (RTT, default 10 ms). With DB=sqld the
    // whole run measures on it; with DB=file the round-trip rows measure on it too.
    let remote: Promise<RemoteDb> | undefined;
    const remoteDb = () => {
      remote ??= startRemoteDb(options.rttMs, cleanups);
      return remote;
    };
    const dbUrl = options.db === 'sqld' ? (await remoteDb()).url : BENCH_DB_URL;
    const setup = await benchSetup(dbUrl);
    const ctx: SuiteContext = {
      options,
      settings,
      dbUrl,
      remoteDb,
      setup,
      runDir: join(options.resultsDir, runId),
      webhookSecret: readFileSync(DEV_WEBHOOK_SECRET_FILE, 'utf8').trim(),
      signal,
      progress,
      warnings,
      cleanups,
    };
    for (const name of options.suites) {
      checkAborted(ctx);
      const suite = BENCH_SUITES[name];
      if (!suite.databases.includes(options.db)) {
        warnings.push(
          `${name} measures on DB=${suite.databases.join('|')} only; skipped with DB=${options.db}`,
        );
        continue;
      }
      try {
        figures.push(...(await suite.run(ctx)));
      } catch (error) {
        if (error instanceof Aborted || signal.aborted) throw error;
        failures.push(`${name}: ${(error as Error).message.split('\n')[0]}`);
      }
    }
  } catch (error) {
    if (!(error instanceof Aborted) && !signal.aborted) throw error;
    incompleteReason = 'interrupted';
  } finally {
    for (const cleanup of cleanups.reverse()) await Promise.resolve(cleanup()).catch(() => {});
  }
  // the processes write their profiles as they exit: every one has stopped by now
  let profiles: ProfileSummary[] | undefined;
  let profileComparisons: ProfileComparison[] | undefined;
  if (options.cpuProfile) {
    try {
      profiles = summarizeProfiles(join(options.resultsDir, runId, 'profiles'), {
        onUnreadable: (file, error) =>
          warnings.push(`CPU profile ${file} not read: ${error.message.split('\n')[0]}`),
      });
      profileComparisons = comparePairs(options.suites, profiles, figures);
    } catch (error) {
      warnings.push(`CPU profiles not summarized: ${(error as Error).message.split('\n')[0]}`);
    }
  }

  const results: BenchResults = {
    schema: RESULTS_SCHEMA,
    runId,
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
    ...(profiles ? { profiles } : {}),
    ...(profileComparisons?.length ? { profileComparisons } : {}),
  };
  return results;
}

/** The suites' profile pairs whose two main threads were profiled and measured in this run. */
function comparePairs(
  suites: readonly (keyof typeof BENCH_SUITES)[],
  profiles: readonly ProfileSummary[],
  figures: readonly Figure[],
): ProfileComparison[] {
  const comparisons: ProfileComparison[] = [];
  for (const suite of suites) {
    for (const pair of BENCH_SUITES[suite].profilePairs ?? []) {
      const side = ({ process, cpuMetric }: { process: string; cpuMetric: string }) => {
        const summary = profiles.find((p) => p.process === process && p.thread === 0);
        const cpu = figures.find((f) => f.suite === suite && f.metric === cpuMetric)?.value;
        return summary && cpu != null ? { summary, cpuPerRequestUs: cpu } : undefined;
      };
      const base = side(pair.base);
      const other = side(pair.other);
      if (base && other) comparisons.push(compareProfiles(pair.name, base, other));
    }
  }
  return comparisons;
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
  await writeReportHtml(results, dir);
  console.log(renderTerminal(results));
  console.log(
    `\nresults: ${dir}/results.json, ${dir}/report.md, ${dir}/report.html and charts/*.svg (results/latest)`,
  );
  for (const failure of results.failures) console.error(`suite failed: ${failure}`);
  if (!results.complete) return 130;
  return results.failures.length > 0 ? 1 : 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await main();
}

/** sqld seeded directly (fast), then reached through the relay (slow on purpose). */
async function startRemoteDb(
  rttMs: number,
  cleanups: Array<() => Promise<void> | void>,
): Promise<RemoteDb> {
  const sqld = await startSqld();
  cleanups.push(() => sqld.stop());
  await benchSetup(sqld.url);
  if (rttMs === 0) return { url: sqld.url, rttMs, sqldUrl: sqld.url };
  const target = new URL(sqld.url);
  const relay = await startLatencyRelay(
    { host: target.hostname, port: Number(target.port) },
    rttMs,
  );
  cleanups.push(() => relay.close());
  return { url: `http://127.0.0.1:${relay.port}`, rttMs, sqldUrl: sqld.url };
}
