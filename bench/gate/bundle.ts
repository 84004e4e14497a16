import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import { METRIC_LABELS, WORKER_BUNDLE_GZIP_MAX_BYTES } from '../budgets.ts';
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
    execFileSync(resolve('node_modules/.bin/wrangler'), ['deploy', '--dry-run', '--outdir', out], {
      cwd,
      env: { ...process.env, CLOUDFLARE_CF_FETCH_ENABLED: 'false', WRANGLER_SEND_METRICS: 'false' },
      stdio: 'pipe',
    });
    return readdirSync(out)
      .filter((file) => file.endsWith('.js') || file.endsWith('.mjs'))
      .reduce((bytes, file) => bytes + gzipSync(readFileSync(join(out, file))).length, 0);
  } catch (error) {
    const stderr = (error as { stderr?: Buffer }).stderr?.toString().trim().split('\n').slice(-3);
    throw new GateUsageError(
      'environment',
      `wrangler deploy --dry-run failed in ${cwd}: ${stderr?.join(' ') ?? (error as Error).message}`,
    );
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

/** The gate's row: head against the ceiling (exact), the base's size beside it. */
export function workerBundleRow(head: number | null, base: number | null | undefined): GateRow {
  const over = head !== null && head > WORKER_BUNDLE_GZIP_MAX_BYTES;
  return {
    entry: 'worker/bundle',
    metric: 'worker_bundle_gzip',
    ...METRIC_LABELS.worker_bundle_gzip,
    base: base ?? null,
    head,
    ratio: base && head !== null ? Math.round((head / base) * 1000) / 1000 : null,
    interval: null,
    budget: `≤ ${WORKER_BUNDLE_GZIP_MAX_BYTES}`,
    verdict: head === null ? 'skipped' : over ? 'regression' : 'pass',
    ...(head === null ? { note: 'no wrangler.toml' } : {}),
    ...(over ? { note: `ceiling ${WORKER_BUNDLE_GZIP_MAX_BYTES} B exceeded (exact)` } : {}),
  };
}
