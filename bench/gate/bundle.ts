import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import { METRIC_LABELS, WORKER_BUNDLE_GZIP_MAX_BYTES, WORKER_STARTUP_MAX_MS } from '../budgets.ts';
import { type GateRow, GateUsageError } from './types.ts';

/**
 * Bytes of the Worker bundle of the checkout at `cwd`, gzip-compressed, as `wrangler
 * deploy --dry-run` writes it (offline: no account, no network); null when that checkout
 * has no `wrangler.toml` (a base from before the Worker).
 */
export function workerBundleGzipBytes(cwd: string): number | null {
  if (!existsSync(join(cwd, 'wrangler.toml'))) return null;
  const out = mkdtempSync(join(tmpdir(), 'worker-bundle-'));
  try {
    wrangler(cwd, ['deploy', '--dry-run', '--outdir', out]);
    return readdirSync(out)
      .filter((file) => file.endsWith('.js') || file.endsWith('.mjs'))
      .reduce((bytes, file) => bytes + gzipSync(readFileSync(join(out, file))).length, 0);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

/**
 * CPU milliseconds workerd spends starting the Worker of the checkout at `cwd` (parsing
 * the bundle, running its global scope), from the profile `wrangler check startup` takes
 * of a local workerd (offline); null when that checkout has no `wrangler.toml`.
 */
export function workerStartupMs(cwd: string): number | null {
  if (!existsSync(join(cwd, 'wrangler.toml'))) return null;
  const out = mkdtempSync(join(tmpdir(), 'worker-startup-'));
  const profile = join(out, 'startup.cpuprofile');
  try {
    wrangler(cwd, ['check', 'startup', '--outfile', profile]);
    return startupMs(JSON.parse(readFileSync(profile, 'utf8')) as CpuProfile);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

interface CpuProfile {
  nodes: Array<{ id: number; callFrame: { functionName: string } }>;
  samples: number[];
  timeDeltas: number[];
}

/** A profile's busy time, ms: every sample but the idle ones, each with the time before it. */
export function startupMs(profile: CpuProfile): number {
  const idle = new Set(
    profile.nodes.filter((n) => n.callFrame.functionName === '(idle)').map((n) => n.id),
  );
  let us = 0;
  profile.samples.forEach((node, i) => {
    if (!idle.has(node)) us += profile.timeDeltas[i] ?? 0;
  });
  return Math.round(us / 100) / 10;
}

/** Runs wrangler offline (no account, no telemetry) in `cwd`; its last lines name a failure. */
function wrangler(cwd: string, args: string[]): void {
  try {
    execFileSync(resolve('node_modules/.bin/wrangler'), args, {
      cwd,
      env: { ...process.env, CLOUDFLARE_CF_FETCH_ENABLED: 'false', WRANGLER_SEND_METRICS: 'false' },
      stdio: 'pipe',
    });
  } catch (error) {
    const stderr = (error as { stderr?: Buffer }).stderr?.toString().trim().split('\n').slice(-3);
    throw new GateUsageError(
      'environment',
      `wrangler ${args.slice(0, 2).join(' ')} failed in ${cwd}: ${stderr?.join(' ') ?? (error as Error).message}`,
    );
  }
}

/** The gate's row of a build figure: head against its ceiling, the base's figure beside it. */
function ceilingRow(
  metric: 'worker_bundle_gzip' | 'worker_startup_ms',
  entry: string,
  ceiling: number,
  head: number | null,
  base: number | null | undefined,
): GateRow {
  const { label, unit } = METRIC_LABELS[metric];
  const over = head !== null && head > ceiling;
  return {
    entry,
    metric,
    label,
    unit,
    base: base ?? null,
    head,
    ratio: base && head !== null ? Math.round((head / base) * 1000) / 1000 : null,
    interval: null,
    budget: `≤ ${ceiling}`,
    verdict: head === null ? 'skipped' : over ? 'regression' : 'pass',
    ...(head === null ? { note: 'no wrangler.toml' } : {}),
    ...(over ? { note: `ceiling ${ceiling} ${unit} exceeded` } : {}),
  };
}

/** The bundle's row: its gzip size against the ceiling (exact). */
export function workerBundleRow(head: number | null, base: number | null | undefined): GateRow {
  return ceilingRow(
    'worker_bundle_gzip',
    'worker/bundle',
    WORKER_BUNDLE_GZIP_MAX_BYTES,
    head,
    base,
  );
}

/**
 * The startup's row: its CPU against the ceiling. A time, but the ceiling sits at four
 * times what this machine measures, so one slow run does not cross it.
 */
export function workerStartupRow(head: number | null, base: number | null | undefined): GateRow {
  return ceilingRow('worker_startup_ms', 'worker/startup', WORKER_STARTUP_MAX_MS, head, base);
}

/** The build's checks the gate runs once per run, each named by its metric. */
export const BUILD_CHECKS = [
  {
    metric: 'worker_bundle_gzip',
    progress: 'worker/bundle: wrangler deploy --dry-run',
    measure: workerBundleGzipBytes,
    row: workerBundleRow,
  },
  {
    metric: 'worker_startup_ms',
    progress: 'worker/startup: wrangler check startup',
    measure: workerStartupMs,
    row: workerStartupRow,
  },
] as const;
